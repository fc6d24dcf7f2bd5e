"""The benchmarks: the memory probe measures what a step allocates, tiny
runs of each command write every number the docs tables need (classifier,
backbone, whole models; no timing is asserted), and the goal check reads
what they write."""
import json

import numpy as np
import pytest
import torch

from evit_mm.analysis.memory import peak_memory_mib
from tool_helpers import load_tool, run_script

TOOL = 'tools/analysis_tools/benchmark.py'
CLASSIFIER_TOOL = 'tools/analysis_tools/benchmark_classifier.py'
BACKBONE_TOOL = 'tools/analysis_tools/benchmark_backbone.py'
GOALS_SCRIPT = '.dev_scripts/check_goals.py'


def test_peak_memory_sees_a_temporary_allocation():

    def step():
        block = torch.ones(64 * 2**20 // 4)  # 64 MiB, touched, then freed
        return block.sum()

    peak = peak_memory_mib(step)
    if peak is None:
        pytest.skip('the peak resident size cannot be reset here')
    assert 60 < peak < 100
    assert peak_memory_mib(lambda: None) < 8


@pytest.mark.slow
@pytest.mark.runs(CLASSIFIER_TOOL, '--archs', '--batch-sizes', '--threads',
                  '--json')
def test_tiny_classifier_run_writes_all_numbers(tmp_path):
    output = tmp_path / 'classifier.json'
    run_script(
        CLASSIFIER_TOOL, '--archs', 'm0', '--batch-sizes', '2', '--repeats',
        '2', '--warmup', '1', '--threads', '1', '--json', output)
    result = json.loads(output.read_text())
    assert max(result['matmul_rates'].values()) > 0
    assert result['environment']['threads'] == 1
    variants = {row['variant']: row for row in result['classifier']}
    assert set(variants) == {
        'timm', 'evit_mm', 'evit_mm deploy', 'evit_mm onnxruntime'
    }
    for row in variants.values():
        # same weights as timm: the outputs agree
        assert row['rel_err_vs_timm'] < 1e-5
        assert row['p10_ms'] <= row['median_ms'] <= row['p90_ms']


@pytest.mark.slow
@pytest.mark.runs(BACKBONE_TOOL, '--archs', '--shapes', '--repeats',
                  '--threads', '--json')
def test_tiny_backbone_run_writes_all_numbers(tmp_path):
    output = tmp_path / 'backbone.json'
    run_script(BACKBONE_TOOL, '--archs', 'm0', '--shapes', '1x96x128',
               '--repeats', '1', '--threads', '1', '--json', output)
    result = json.loads(output.read_text())
    assert {(r['mode'], r['variant']) for r in result['backbone']} == {
        ('eval', 'timm'), ('eval', 'evit_mm'), ('eval', 'evit_mm deploy'),
        ('train', 'timm'), ('train', 'evit_mm'), ('train', 'evit_mm with_cp')
    }
    for row in result['backbone']:
        assert row['shape'] == [1, 3, 96, 128]
        assert row['peak_mib'] is None or row['peak_mib'] > 0


@pytest.mark.slow
@pytest.mark.runs(TOOL, '--models', '--det-sizes', '--repeats', '--warmup',
                  '--json')
@pytest.mark.runs(TOOL, '--backends')
def test_tiny_whole_model_run_writes_all_numbers(tmp_path):
    """A detector and a segmentor of EfficientViT and their ResNet-18 peers,
    eager and in ONNX Runtime, at sizes that are no multiple of 32; with
    ``--backends`` and no backend, eager only."""
    output = tmp_path / 'models.json'
    models = ['retinanet-m0', 'retinanet-r18', 'fpn-m0-quickstart', 'fpn-r18']
    options = ['--det-sizes', '72x100', '--seg-sizes', '48x60', '--repeats',
               '1', '--warmup', '0', '--threads', '1', '--json', output]
    printed = run_script(TOOL, '--models', *models, *options, '--backends',
                         'onnxruntime')
    result = json.loads(output.read_text())
    rows = {(r['model'], r['backend']): r for r in result['models']}
    assert set(rows) == {(m, b) for m in models
                         for b in ('pytorch', 'onnxruntime')}
    for (model, backend), row in rows.items():
        assert row['size'] == ([72, 100] if model.startswith('retinanet')
                               else [48, 60])
        assert row['efficientvit'] == ('-m0' in model)
        for key in ('img_per_s', 'median_ms', 'backbone_ms',
                    'backbone_share', 'speedup_vs_eager', 'speedup_vs_peer'):
            assert row[key] > 0, (model, backend, key)
        assert 0 < row['backbone_flops'] < row['flops']
        assert row['params'] > 1e6
    # the detectors pad to a multiple of 32, the segmentors do not
    assert rows['retinanet-r18', 'pytorch']['input'] == [1, 3, 96, 128]
    assert rows['fpn-r18', 'pytorch']['input'] == [1, 3, 48, 60]
    assert rows['retinanet-r18', 'onnxruntime']['speedup_vs_peer'] == 1
    assert 'Whole models, batch 1' in printed

    run_script(TOOL, '--models', models[0], *options, '--backends')
    result = json.loads(output.read_text())
    assert [(r['model'], r['backend']) for r in result['models']] == [
        (models[0], 'pytorch')]


@pytest.mark.slow
@pytest.mark.runs(TOOL, '--seg-sizes', '--threads', '--scene-logits',
                  '--graph-tail')
def test_tiny_real_time_run_against_their_peers(tmp_path):
    """RTMDet and SegFormer with EfficientViT beside RTMDet-tiny and
    SegFormer-B0, eager and in OpenVINO (the segmentors also with the label
    map in the graph): each is compared with its own family's peer on the
    same backend."""
    output = tmp_path / 'models.json'
    models = ['rtmdet-m0', 'rtmdet-tiny', 'segformer-m0', 'segformer-b0']
    run_script(
        TOOL, '--models', *models, '--det-sizes', '64x96', '--seg-sizes',
        '48x60', '--repeats', '1', '--warmup', '0', '--threads', '1',
        '--backends', 'openvino', '--scene-logits', '--graph-tail',
        '--json', output)
    result = json.loads(output.read_text())
    rows = {(r['model'], r['backend']): r for r in result['models']}
    # segmentors also with the label map in the graph
    assert set(rows) == {(m, b) for m in models
                         for b in ('pytorch', 'openvino')} | {
                             (m, 'openvino+graph-tail') for m in models
                             if m.startswith('segformer')}
    # MiT-B0's OpenVINO graph at this size outputs empty logits: reported
    failed = {key for key, row in rows.items() if 'error' in row}
    assert {model for model, _ in failed} <= {'segformer-b0'}, failed
    for (model, backend), row in rows.items():
        peer = 'rtmdet-tiny' if model.startswith('rtmdet') else 'segformer-b0'
        if (model, backend) in failed or (peer, backend) in failed:
            continue
        assert row['peer'] == peer
        assert row['speedup_vs_peer'] == pytest.approx(
            rows[peer, backend]['median_ms'] / row['median_ms'])
        assert row['efficientvit'] == model.endswith('-m0')
        assert 0 < row['backbone_flops'] < row['flops']
    # both take 64x96 as it is: a multiple of their coarsest stride, 32
    assert rows['rtmdet-m0', 'pytorch']['input'] == \
        rows['rtmdet-tiny', 'pytorch']['input'] == [1, 3, 64, 96]


@pytest.mark.parametrize('tool', ['benchmark.py', 'benchmark_backbone.py'])
def test_shape_arguments_are_checked(tool, capsys):
    flag, good = {'benchmark.py': ('--det-sizes', '1x1'),
                  'benchmark_backbone.py': ('--shapes', '1x1x1')}[tool]
    parse_args = load_tool('analysis_tools', tool).parse_args
    parse_args([flag, good])
    for bad in ('800', '0x8' + good[3:], 'AxB' + good[3:]):
        with pytest.raises(SystemExit):
            parse_args([flag, bad])
        assert f"argument {flag}: '{bad}': use" in capsys.readouterr().err


def test_whole_model_arguments_are_checked(capsys):
    tool = load_tool('analysis_tools', 'benchmark.py')
    for option, bad, error in (
            ('--models', 'retinanet-r50', "invalid choice: 'retinanet-r50'"),
            ('--backends', 'tensorrt', "invalid choice: 'tensorrt'"),
            ('--repeats', '0', "'0': use an integer >= 1."),
            ('--warmup', '-1', "'-1': use an integer >= 0."),
            ('--threads', 'two', "'two': use an integer >= 1.")):
        with pytest.raises(SystemExit):
            tool.parse_args([option, bad])
        assert f'argument {option}: {error}' in capsys.readouterr().err


def _model_row(model, backend, size, median_ms, **more):
    peer = 'rtmdet-tiny' if model.startswith('rtmdet') else 'fpn-r18'
    return dict(model=model, backend=backend, size=size, peer=peer,
                median_ms=median_ms, efficientvit='-m' in model, **more)


@pytest.mark.runs(GOALS_SCRIPT)
def test_goal_check_reads_the_benchmarks_json(tmp_path):
    """Targets met and missed in the JSON the three benchmarks write give
    PASS and FAIL lines, and a failing exit status."""
    classifier = [
        dict(arch='m0', batch=1, variant='timm', speedup_vs_timm=1.0),
        dict(arch='m0', batch=1, variant='evit_mm deploy',
             speedup_vs_timm=1.4),
        dict(arch='m0', batch=1, variant='evit_mm onnxruntime',
             speedup_vs_timm=1.9),
    ]
    backbone = [
        dict(arch='m4', shape=[1, 3, 64, 64], mode='train', variant=variant,
             peak_mib=peak)
        for variant, peak in (('evit_mm', 100.), ('evit_mm with_cp', 40.))
    ]
    models = [
        _model_row('rtmdet-m0', 'pytorch', [64, 64], 30.),
        _model_row('rtmdet-m0', 'openvino', [64, 64], 10.,
                   speedup_vs_eager=3., speedup_vs_peer=1.5),
        _model_row('rtmdet-tiny', 'pytorch', [64, 64], 20.),
        _model_row('rtmdet-tiny', 'openvino', [64, 64], 15.,
                   speedup_vs_eager=20 / 15, speedup_vs_peer=1.),
        _model_row('rtmdet-m0', 'onnxruntime', [64, 64], None,
                   error='export failed'),
    ]
    files = []
    for name, rows in (('classifier', classifier), ('backbone', backbone),
                       ('models', models)):
        files.append(tmp_path / f'{name}.json')
        files[-1].write_text(json.dumps({name: rows}))
    printed = run_script(GOALS_SCRIPT, *files, returncode=1)
    lines = set(printed.splitlines())
    assert lines == {
        'PASS  evit_mm deploy m0 batch 1: 1.40x (goal >= 1.3x)',
        'FAIL  evit_mm onnxruntime m0 batch 1: 1.90x (goal >= 2.0x)',
        'PASS  with_cp training memory saving m4 1x3x64x64: 60% '
        '(goal >= 30%)',
        'FAIL  openvino rtmdet-m0 vs rtmdet-tiny 64x64: 1.50x '
        '(goal >= 2.0x)',
        'FAIL  onnxruntime rtmdet-m0 runs at 64x64: 0.00x (goal >= 1.0x)',
        'PASS  best backend (openvino) vs eager rtmdet-m0 64x64: 3.00x '
        '(goal >= 2.0x)',
    }


TAIL_TOOL = 'tools/analysis_tools/time_label_map_tail.py'


def test_label_map_tail_is_mmseg_resize_and_argmax():
    """The old tail's graph computes what mmseg computes at the end of a
    segmentor: bilinear resize (align_corners as the head's), argmax over
    the classes."""
    pytest.importorskip('onnxruntime')
    import onnxruntime
    from evit_mm.deploy.label_map import tail_graph
    logits = torch.randn(1, 7, 9, 9)
    for align_corners in (False, True):
        session = onnxruntime.InferenceSession(
            tail_graph(align_corners), providers=['CPUExecutionProvider'])
        labels = session.run(None, {
            'logits': logits.numpy(),
            'size': np.array([1, 7, 40, 40])})[0]
        expected = torch.nn.functional.interpolate(
            logits, size=(40, 40), mode='bilinear',
            align_corners=align_corners).argmax(1, keepdim=True)
        assert torch.equal(torch.from_numpy(labels), expected)


@pytest.mark.runs(TAIL_TOOL, '--size', '--logit-sizes', '--classes',
                  '--threads', '--repeat')
def test_label_map_tail_tool_prints_each_size():
    pytest.importorskip('openvino')
    out = run_script(TAIL_TOOL, '--size', '32', '--logit-sizes', '4', '8',
                     '--classes', '9', '--threads', '1', '--repeat', '2')
    assert [line for line in out.splitlines() if 'classes' in line] == [
        '9 classes 4x4 -> 32x32, 1 threads:',
        '9 classes 8x8 -> 32x32, 1 threads:']
    rows = [line.split()[:2] for line in out.splitlines()
            if 'boundary cells' in line]
    assert rows == [[kind, backend] for _ in range(2)
                    for kind in ('realistic', 'random')
                    for backend in ('onnxruntime', 'openvino')]
    assert out.count('same labels') == 8
    err = run_script(TAIL_TOOL, '--repeat', '0', returncode=2)
    assert '--repeat must be >= 1, got 0' in err
    err = run_script(TAIL_TOOL, '--classes', '5', returncode=2)
    assert '--classes must be >= 8, got 5' in err