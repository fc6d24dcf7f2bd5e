"""tools/analysis_tools/compare_backbones.sh at a tiny budget: every model
is trained, tested, timed and tabled, the table's accuracies are those of
the evaluations tools/test.py logged, and the plot is written."""
import glob
import json
import os
import os.path as osp
import re
import subprocess

import matplotlib.image
import pytest

from tool_helpers import REPO_ROOT, load_tool, run_command, run_script

DETECTORS = ['retinanet_efficientvit-m0', 'retinanet_r18',
             'retinanet_mobilenetv2', 'rtmdet_efficientvit-m0', 'rtmdet_tiny']
SEGMENTORS = ['fpn_efficientvit-m0', 'fpn_r18', 'fpn_mobilenetv2',
              'segformer_efficientvit-m0', 'segformer_mit-b0']
TOOL = 'tools/analysis_tools/compare_backbones.py'


def _logged_accuracy(model_dir: str, key: str) -> float:
    """The metric as the test run's text log prints it (not the json file
    the tool reads); mmdet logs ``Epoch(test)``, mmseg ``Iter(test)``."""
    [log] = glob.glob(osp.join(model_dir, 'test', '*', '*.log'))
    with open(log) as f:
        found = re.findall(
            rf'(?:Epoch|Iter)\(test\).*\b{re.escape(key)}: ([\d.]+)',
            f.read())
    assert len(found) == 1, f'{log}: {found}'
    return float(found[0])


def _table_rows(path: str) -> list:
    with open(path) as f:
        lines = [line for line in f if line.startswith('| ')]
    return [[cell.strip() for cell in line.strip().strip('|').split('|')]
            for line in lines[1:]]


@pytest.mark.slow
@pytest.mark.runs('tools/analysis_tools/compare_backbones.sh')
def test_compare_backbones_tiny_budget(tmp_path):
    work_dir = tmp_path / 'work'
    out = run_command(
        ['bash', 'tools/analysis_tools/compare_backbones.sh'],
        WORK_DIR=str(work_dir), DATA_DIR=str(tmp_path / 'data'),
        NUM_TRAIN='8', NUM_VAL='4', EPOCHS='1', ITERS='2', TIMING_RUNS='2',
        # one epoch: low scores and empty boxes (RTMDet's ReLU distances)
        DET_TEST_OPTIONS='model.test_cfg.score_thr=0 '
                         'model.test_cfg.min_bbox_size=-1')
    assert '[compare] timing and table' in out

    table = work_dir / 'compare_backbones.md'
    assert table.read_text().startswith(
        'Trained: detection 1 epoch at batch 8, segmentation 2 iterations '
        'at batch 8.\n')
    rows = _table_rows(table)
    assert [row[1] for row in rows] == DETECTORS + SEGMENTORS
    with open(work_dir / 'compare_backbones.json') as f:
        records = json.load(f)
    for row, record in zip(rows, records):
        model_dir = str(work_dir / record['model'])
        if record['task'] == 'detection':
            logged = _logged_accuracy(model_dir, 'coco/bbox_mAP') * 100
        else:
            logged = _logged_accuracy(model_dir, 'mIoU')
        # the log rounds to 4 decimals (mAP in [0, 1]) or 2 (mIoU in %)
        assert record['accuracy'] == pytest.approx(logged, abs=0.011)
        assert row[3] == f"{record['metric']} {record['accuracy']:.1f}"
        assert float(row[6]) > 0 and float(row[7]) > 0  # img/s, params
    assert {r['backbone'] for r in records} == {
        'EfficientViT', 'ResNet', 'mmdet.MobileNetV2', 'ResNetV1c',
        'mmseg.MobileNetV2', 'CSPNeXt', 'MixVisionTransformer'}
    image = matplotlib.image.imread(work_dir / 'compare_backbones.png')
    assert image.shape[0] > 100 and image.shape[1] > 200

    # the table follows the test metrics file: change it, table again
    for name, key, value in [(DETECTORS[1], 'coco/bbox_mAP', 0.4242),
                             (SEGMENTORS[2], 'mIoU', 42.42)]:
        [metrics_file] = glob.glob(
            osp.join(work_dir, name, 'test', '*', '*.json'))
        with open(metrics_file) as f:
            metrics = json.load(f)
        metrics[key] = value
        with open(metrics_file, 'w') as f:
            json.dump(metrics, f)
    run_script(TOOL, work_dir, '--detectors', DETECTORS[1], '--segmentors',
               SEGMENTORS[2], '--runs', '1', '--warmup', '0')
    rows = _table_rows(work_dir / 'compare_backbones.md')
    assert [(row[1], row[3]) for row in rows] == [
        (DETECTORS[1], 'bbox mAP 42.4'), (SEGMENTORS[2], 'mIoU 42.4')]


def test_compare_backbones_rejects_bad_arguments(capsys):
    tool = load_tool('analysis_tools', 'compare_backbones.py')
    with pytest.raises(SystemExit):
        tool.parse_args(['work'])
    assert 'name at least one model' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        tool.parse_args(['work', '--detectors', 'a', '--runs', '0'])
    assert '--runs must be at least 1, got 0' in capsys.readouterr().err


def test_missing_test_run_is_named(tmp_path):
    tool = load_tool('analysis_tools', 'compare_backbones.py')
    with pytest.raises(FileNotFoundError, match='test metrics file'):
        tool.test_metrics(str(tmp_path / 'never_tested'))


def test_unknown_task_is_named():
    result = subprocess.run(
        ['bash', 'tools/analysis_tools/compare_backbones.sh'],
        cwd=REPO_ROOT, env=dict(os.environ, TASKS='detection keypoints'),
        capture_output=True, text=True)
    assert result.returncode == 2
    assert ("TASKS: unknown task 'keypoints' (allowed: detection "
            'segmentation)') in result.stderr


def _run_script(tmp_path, **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        ['bash', 'tools/analysis_tools/compare_backbones.sh'], cwd=REPO_ROOT,
        env=dict(os.environ, WORK_DIR=str(tmp_path), SKIP_DATA='1', **env),
        capture_output=True, text=True)


def test_models_picks_a_subset(tmp_path):
    """MODELS keeps only the models it names, in every step: a dry run
    (PYTHON=echo prints each command instead of running it)."""
    result = _run_script(tmp_path, MODELS='fpn_r18 rtmdet_tiny',
                         PYTHON='echo')
    assert result.returncode == 0, result.stderr
    assert re.findall(r'\[compare\] (\w+) ([\w-]+)', result.stdout) == [
        ('training', 'rtmdet_tiny'), ('testing', 'rtmdet_tiny'),
        ('training', 'fpn_r18'), ('testing', 'fpn_r18'),
        ('timing', 'and')]
    assert '--detectors rtmdet_tiny --segmentors fpn_r18 --runs' in \
        result.stdout


def test_unknown_model_is_named(tmp_path):
    result = _run_script(tmp_path, MODELS='fpn_r18 fpn_r50',
                         TASKS='segmentation')
    assert result.returncode == 2
    assert "MODELS: unknown model 'fpn_r50' (allowed: " in result.stderr
    assert 'segformer_mit-b0' in result.stderr
