"""The journeys of docs/journeys.md, run as the page prints them: the page
shows the example configs of ``configs/examples/`` verbatim, and these
tests build them, train and deploy the detector from a fresh clone's point
of view (commands in fresh processes, relative paths from the user's
folder), and check the GPU installation commands against tools/install.sh.
"""
import json
import os
import os.path as osp
import re
import subprocess
import sys
from typing import Dict, List

import pytest
import torch

from reference import EMBED_DIMS, official_state_dict, timm_model
from seg_helpers import build_segmentor, load_config
from tool_helpers import REPO_ROOT, record_run, run_script

PAGE = osp.join(REPO_ROOT, 'docs', 'journeys.md')
EXAMPLES = osp.join(REPO_ROOT, 'configs', 'examples')
DETECTOR = 'retinanet_efficientvit-m0_fpn_1x_custom-coco'
RTMDET = 'rtmdet_efficientvit-m0_custom-coco'
SEGMENTORS = [
    'upernet_efficientvit-m0_4xb4-80k_ade20k-512x512',
    'upernet_efficientvit-m0-noneck_4xb4-80k_ade20k-512x512',
    'fcn_efficientvit-m0_4xb4-80k_ade20k-512x512',
]
# A config shown on the page: a link to the file, then its text in a block.
SHOWN = re.compile(
    r'\[`configs/examples/([\w.-]+\.py)`\]\([^)]*\):?\n\n```python\n(.*?)```',
    re.DOTALL)


def page_text() -> str:
    with open(PAGE, encoding='utf-8') as f:
        return f.read()


def shown_configs() -> Dict[str, str]:
    """File name -> the text the page shows for it."""
    return dict(SHOWN.findall(page_text()))


def shell_blocks() -> List[str]:
    """The page's ```bash blocks, continuation lines joined."""
    blocks = re.findall(r'```bash\n(.*?)```', page_text(), re.DOTALL)
    return [block.replace('\\\n', ' ') for block in blocks]


def test_page_shows_each_example_config_as_it_is():
    shown = shown_configs()
    assert sorted(shown) == sorted(
        f'{name}.py' for name in [RTMDET, DETECTOR] + SEGMENTORS)
    for name, text in shown.items():
        with open(osp.join(EXAMPLES, name), encoding='utf-8') as f:
            assert text == f.read(), f'docs/journeys.md shows another {name}'


def _level_shapes(height: int, width: int, strides) -> List[tuple]:
    """(H, W) of maps covering the image in cells of each stride."""
    return [(-(-height // s), -(-width // s)) for s in strides]


@pytest.mark.parametrize(
    'name, channels, strides, aux',
    [(SEGMENTORS[0], [256] * 4, [4, 8, 16, 32], 2),
     (SEGMENTORS[1], EMBED_DIMS['m0'], [16, 32, 64], 1),
     (SEGMENTORS[2], EMBED_DIMS['m0'], [16, 32, 64], 1)])
def test_segmentation_swap_predicts(name, channels, strides, aux):
    """Each swapped mmseg config builds, predicts a label map of the image's
    size with ADE20K's 150 classes, and its auxiliary head (only used in
    training) reads the level its in_index names."""
    from mmseg.structures import SegDataSample
    model = build_segmentor(osp.join(EXAMPLES, f'{name}.py')).eval()
    height, width = 64, 96
    data = dict(
        inputs=[torch.randint(0, 256, (3, height, width), dtype=torch.uint8)],
        data_samples=[SegDataSample(metainfo=dict(
            img_shape=(height, width), ori_shape=(height, width)))])
    with torch.no_grad():
        prediction = model.test_step(data)[0]
        feats = model.extract_feat(model.data_preprocessor(data)['inputs'])
        aux_logits = model.auxiliary_head(feats)
    assert prediction.pred_sem_seg.data.shape == (1, height, width)
    assert prediction.seg_logits.data.shape[0] == 150
    assert [tuple(f.shape[1:]) for f in feats] == [
        (c, *hw) for c, hw in zip(channels, _level_shapes(
            height, width, strides))]
    assert aux_logits.shape[1:] == (150, *feats[aux].shape[2:])
    # --auto-scale-lr needs the recipe's total batch: GPUs x batch per GPU
    # of the file name (mmseg's naming), here 4xb4.
    gpus, per_gpu = map(int, re.search(r'_(\d+)xb(\d+)-', name).groups())
    assert load_config(osp.join(
        EXAMPLES, f'{name}.py')).auto_scale_lr.base_batch_size == gpus * per_gpu


def _user_run(cwd: str, script: str, *args) -> str:
    """A tool of this checkout run from the user's folder ``cwd`` in a fresh
    interpreter; fails the test unless it succeeds."""
    record_run([script, *map(str, args)])
    result = subprocess.run(
        [sys.executable, osp.join(REPO_ROOT, script), *map(str, args)],
        cwd=cwd, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        env=dict(os.environ, PYTHONPATH=REPO_ROOT))
    assert result.returncode == 0, result.stdout[-4000:]
    return result.stdout


@pytest.mark.slow
@pytest.mark.runs('tools/train.py', '--auto-scale-lr', '--cfg-options')
def test_finetune_on_own_coco_data_then_deploy(tmp_path):
    """Journeys 1 and 3: the example detector config fine-tuned on a small
    COCO-format dataset under data/my_dataset (checked first) with
    --auto-scale-lr and the official weights from a local file, then
    deployed from the config its work dir saved, each command in a fresh
    process started from the user's folder."""
    run_script('tools/dataset_converters/make_synthetic_data.py',
               tmp_path / 'generated', '--formats', 'coco', '--num-train', 2,
               '--num-val', 1, '--img-size', 128)
    os.mkdir(tmp_path / 'data')
    os.rename(tmp_path / 'generated' / 'coco', tmp_path / 'data' / 'my_dataset')
    _user_run(tmp_path, 'tools/analysis_tools/check_dataset.py',
              osp.join(EXAMPLES, f'{DETECTOR}.py'))
    weights = tmp_path / 'efficientvit_m0.pth'
    torch.save({'model': official_state_dict(timm_model('m0'))}, weights)

    small = '(128,128)'  # the images' size instead of 1333x800, to be quick
    _user_run(
        tmp_path, 'tools/train.py', osp.join(EXAMPLES, f'{DETECTOR}.py'),
        '--auto-scale-lr', '--cfg-options',
        f'model.backbone.init_cfg.checkpoint={weights}',
        'train_cfg.max_epochs=1', 'default_hooks.logger.interval=1',
        f'train_dataloader.dataset.pipeline.2.scale={small}',
        f'val_dataloader.dataset.pipeline.1.scale={small}',
        f'test_dataloader.dataset.pipeline.1.scale={small}')
    work_dir = tmp_path / 'work_dirs' / DETECTOR
    (run_dir,) = [d for d in os.listdir(work_dir) if d[:1].isdigit()]
    with open(work_dir / run_dir / f'{run_dir}.log') as f:
        log = f.read()
    assert f'from {weights} (official layout)' in log, 'weights not loaded'
    with open(work_dir / run_dir / 'vis_data' / 'scalars.json') as f:
        first = json.loads(f.readline())
    # The linear scaling rule: lr 1e-4 at batch 16, here 1 process x 2
    # images; the first iteration of mmdet's warm-up runs at 0.001 of it.
    assert first['lr'] == pytest.approx(1e-4 * 2 / 16 * 0.001)

    output = _user_run(
        tmp_path, 'tools/deployment/deploy.py',
        f'work_dirs/{DETECTOR}/{DETECTOR}.py',
        f'work_dirs/{DETECTOR}/epoch_1.pth', '--backend', 'onnxruntime',
        '--work-dir', f'work_dirs/deploy/{DETECTOR}-ort', '--img',
        'data/my_dataset/val/000000.jpg')
    assert 'data/my_dataset/val/000000.jpg: ' in output, output[-2000:]
    deployed = tmp_path / 'work_dirs' / 'deploy' / f'{DETECTOR}-ort'
    assert sorted(os.listdir(deployed)) == [
        'deploy_cfg.py', 'end2end.onnx', 'model_cfg.py']



@pytest.mark.slow
@pytest.mark.runs('tools/train.py', '--cfg-options')
def test_rtmdet_example_trains_offline_through_both_stages(tmp_path):
    """The RTMDet example fine-tuned on a small COCO-format dataset under
    data/my_dataset without the ImageNet weights (``init_cfg=None``, the
    offline journey): the log has a line within the first epoch (10
    iterations of 1 image), the pipeline switches to RTMDet's second stage
    where the hook says, and the head predicts the dataset's classes."""
    run_script('tools/dataset_converters/make_synthetic_data.py',
               tmp_path / 'generated', '--formats', 'coco', '--num-train', 10,
               '--num-val', 1, '--img-size', 128)
    os.mkdir(tmp_path / 'data')
    os.rename(tmp_path / 'generated' / 'coco',
              tmp_path / 'data' / 'my_dataset')
    config = osp.join(EXAMPLES, f'{RTMDET}.py')
    # Two epochs, the second in the plain pipeline: the switch moved from
    # epoch 90 of the example's 100 to epoch 1 of 2.
    _user_run(
        tmp_path, 'tools/train.py', config, '--cfg-options',
        'model.backbone.init_cfg=None', 'train_cfg.max_epochs=2',
        'custom_hooks.1.switch_epoch=1', 'train_dataloader.batch_size=1',
        'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False')
    work_dir = tmp_path / 'work_dirs' / RTMDET
    (run_dir,) = [d for d in os.listdir(work_dir) if d[:1].isdigit()]
    with open(work_dir / run_dir / f'{run_dir}.log') as f:
        log = f.read()
    assert 'Epoch(train) [1][10/10]' in log, log[-3000:]
    # PipelineSwitchHook says so once, after the first epoch's last line.
    assert log.count('Switch pipeline now!') == 1
    assert log.index('Switch pipeline now!') > log.index('[1][10/10]')
    state = torch.load(work_dir / 'epoch_2.pth', map_location='cpu',
                       weights_only=False)['state_dict']
    assert state['bbox_head.rtm_cls.0.weight'].shape[0] == 3


def _install_script() -> str:
    with open(osp.join(REPO_ROOT, 'tools', 'install.sh')) as f:
        return f.read()


def test_gpu_build_commands_agree_with_install_script():
    """The mmcv build the GPU section prints is the one install.sh runs:
    same version, same C++ standard edit, same pip flags, ops on."""
    script = _install_script()
    with open(osp.join(REPO_ROOT, 'requirements', 'tested.txt')) as f:
        wanted = re.search(r'^mmcv==([\d.]+)$', f.read(), re.M).group(1)
    assert f'"mmcv=={wanted}"' in script
    build = next(block for block in shell_blocks() if 'sed -i' in block)
    assert re.findall(r'mmcv[=-]=?([\d.]+\d)', build) and set(
        re.findall(r'mmcv[=-]=?([\d.]+\d)', build)) == {wanted}
    sed = re.search(r"sed -i '([^']+)'", script).group(1)
    assert f"sed -i '{sed}'" in build
    for flag in ('--no-build-isolation', '--no-cache-dir', '--no-deps',
                 'MMCV_WITH_OPS=1', '--no-binary :all:'):
        assert flag in script and flag in build, flag
    gpu = next(block for block in shell_blocks()
               if 'TORCH_CUDA_ARCH_LIST' in block)
    assert 'FORCE_CUDA=1' in gpu and 'bash tools/install.sh' in gpu
