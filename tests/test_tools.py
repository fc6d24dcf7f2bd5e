"""The tools end to end on a tiny synthetic dataset: train, stop and resume,
test with --out/--show-dir, 2-process CPU DDP training and testing, and the
image demo (boxes and masks drawn)."""
import json
import os
import os.path as osp
import pickle
import random
import shutil

import cv2
import numpy as np
import pytest
import torch

from evit_mm.datasets.synthetic import generate
from tool_helpers import run_command, run_script

pytestmark = pytest.mark.slow

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
QUICKSTART = osp.join(REPO_ROOT, 'configs', 'quickstart',
                      'retinanet_efficientvit-m0_synthetic.py')
TINY_CONFIG = """
_base_ = {base!r}
data_root = {data_root!r}
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(96, 96), keep_ratio=True),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(96, 96), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape',
                                          'img_shape', 'scale_factor'))
]
train_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')
test_evaluator = val_evaluator
train_cfg = dict(max_epochs=2, val_interval=2)
param_scheduler = [
    dict(type='MultiStepLR', by_epoch=True, begin=0, end=2, milestones=[1],
         gamma=0.1)
]
default_hooks = dict(
    checkpoint=dict(interval=1, max_keep_ckpts=-1), logger=dict(interval=1))
randomness = dict(seed=0)
# keep every box: a barely trained model scores below the default 0.05
model = dict(test_cfg=dict(score_thr=0.))
"""


def _load(path):
    return torch.load(str(path), weights_only=True)


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp('tiny')
    generate(str(root / 'data'), formats=['coco'], num_train=4, num_val=2,
             img_size=(96, 96), seed=1)
    config = root / 'tiny.py'
    config.write_text(
        TINY_CONFIG.format(base=QUICKSTART,
                           data_root=str(root / 'data' / 'coco') + '/'))
    return root, config


@pytest.fixture(scope='module')
def trained(tiny):
    root, config = tiny
    work_dir = root / 'full'
    run_script('tools/train.py', config, '--work-dir', work_dir)
    return work_dir


@pytest.mark.runs('tools/train.py', '--work-dir', '--resume')
def test_train_stop_resume(tiny, trained):
    root, config = tiny
    # a run stopped after epoch 1 leaves epoch_1.pth and last_checkpoint
    stopped = root / 'stopped'
    stopped.mkdir()
    shutil.copy(trained / 'epoch_1.pth', stopped / 'epoch_1.pth')
    (stopped / 'last_checkpoint').write_text(str(stopped / 'epoch_1.pth'))
    log = run_script('tools/train.py', config, '--work-dir', stopped,
                     '--resume')
    assert 'resumed epoch: 1, iter: 2' in log
    assert 'Epoch(train) [1]' not in log and 'Epoch(train) [2][2/2]' in log

    full, resumed = _load(trained / 'epoch_2.pth'), _load(stopped /
                                                           'epoch_2.pth')
    assert full['meta']['iter'] == resumed['meta']['iter'] == 4
    for key, value in full['state_dict'].items():
        torch.testing.assert_close(resumed['state_dict'][key], value,
                                   rtol=1e-4, atol=1e-5)
    for index, state in full['optimizer']['state'].items():
        for key, value in state.items():
            torch.testing.assert_close(resumed['optimizer']['state'][index]
                                       [key], value, rtol=1e-4, atol=1e-5)
    lrs = [c['optimizer']['param_groups'][0]['lr'] for c in (full, resumed)]
    assert lrs == pytest.approx([2e-4, 2e-4])  # 2e-3 x 0.1 after epoch 1
    assert full['param_schedulers'] == resumed['param_schedulers']


@pytest.mark.runs('tools/test.py', '--work-dir', '--out', '--show-dir')
def test_test_tool_out_and_show_dir(tiny, trained):
    root, config = tiny
    out = root / 'preds.pkl'
    log = run_script('tools/test.py', config, trained / 'epoch_2.pth',
                     '--work-dir', root / 'test', '--out', out, '--show-dir',
                     'vis')
    assert 'coco/bbox_mAP' in log
    with open(out, 'rb') as f:
        predictions = pickle.load(f)
    assert len(predictions) == 2 and 'pred_instances' in predictions[0]
    drawn = [
        name for _, _, files in os.walk(root / 'test') for name in files
        if name.endswith('.jpg')
    ]
    assert sorted(drawn) == ['000000.jpg', '000001.jpg']


@pytest.mark.runs('tools/dist_train.sh', '--work-dir')
@pytest.mark.runs('tools/dist_test.sh', '--work-dir')
def test_two_process_cpu_ddp(tiny):
    root, config = tiny
    port = str(random.randint(20000, 40000))
    work_dir = root / 'ddp'
    log = run_command(['bash', 'tools/dist_train.sh', str(config), '2',
                       '--work-dir', str(work_dir)], PORT=port)
    assert 'processes: 2' in log and 'distributed backend:' in log
    # 4 images / (2 processes x batch 2) = 1 iteration an epoch
    assert _load(work_dir / 'epoch_2.pth')['meta']['iter'] == 2
    log = run_command(['bash', 'tools/dist_test.sh', str(config),
                       str(work_dir / 'epoch_2.pth'), '2', '--work-dir',
                       str(root / 'ddp_test')],
                      PORT=port)
    assert 'coco/bbox_mAP' in log


# Stand-ins for Slurm's commands: srun runs the job once as task 0 of 1 on
# this machine and notes its own options; scontrol names the node.
FAKE_SRUN = """#!/usr/bin/env bash
echo "$@" > "$(dirname "$0")/srun_args"
while [ "${1#-}" != "$1" ]; do
  if [ "$1" = -p ]; then shift; fi
  shift
done
SLURM_PROCID=0 SLURM_NTASKS=1 SLURM_LOCALID=0 SLURM_NODELIST=node1 exec "$@"
"""
FAKE_SCONTROL = """#!/usr/bin/env bash
echo 127.0.0.1
"""


@pytest.mark.runs('tools/slurm_train.sh')
def test_slurm_train_with_stand_in_srun(tiny, tmp_path):
    """tools.md's Slurm command with GPUS=1, through stand-ins for srun and
    scontrol: one task trains with the slurm launcher (gloo on a CPU)."""
    root, config = tiny
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    for name, text in (('srun', FAKE_SRUN), ('scontrol', FAKE_SCONTROL)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    work_dir = tmp_path / 'slurm'
    log = run_command(
        ['bash', 'tools/slurm_train.sh', 'cpu', 'evit', str(config),
         str(work_dir), '--cfg-options', 'train_cfg.max_epochs=1'],
        GPUS='1', PATH=f'{bin_dir}{os.pathsep}{os.environ["PATH"]}',
        MASTER_PORT=str(random.randint(20000, 40000)))
    assert 'launcher: slurm' in log and 'distributed backend:' in log
    assert (work_dir / 'epoch_1.pth').exists()
    srun_args = (bin_dir / 'srun_args').read_text().split()
    assert srun_args[:2] == ['-p', 'cpu']
    assert {'--job-name=evit', '--ntasks=1', '--gres=gpu:1'} <= set(srun_args)


@pytest.mark.runs('demo/image_demo.py', '--weights', '--out-dir',
                  '--pred-score-thr')
def test_demo_draws_boxes(tiny, trained):
    root, config = tiny
    image = root / 'data' / 'coco' / 'val' / '000000.jpg'
    run_script('demo/image_demo.py', image, config, '--weights',
               trained / 'epoch_2.pth', '--out-dir', root / 'demo',
               '--pred-score-thr', '0')
    drawn = cv2.imread(str(root / 'demo' / 'vis' / '000000.jpg'))
    assert drawn.shape == cv2.imread(str(image)).shape
    with open(root / 'demo' / 'preds' / '000000.json') as f:
        assert len(json.load(f)['bboxes']) > 0


def test_demo_draws_masks(tmp_path):
    """A Mask R-CNN (random weights, 3 classes: its scores clear 0.05)
    draws instance masks."""
    config = tmp_path / 'mask.py'
    config.write_text(
        f"_base_ = {osp.join(REPO_ROOT, 'configs', 'mask_rcnn', 'mask-rcnn_efficientvit-m0_fpn_1x_coco.py')!r}\n"  # noqa: E501
        "model = dict(backbone=dict(init_cfg=None), roi_head=dict("
        "bbox_head=dict(num_classes=3), mask_head=dict(num_classes=3)))\n")
    image = tmp_path / 'image.jpg'
    cv2.imwrite(str(image), np.full((96, 128, 3), 127, np.uint8))
    run_script('demo/image_demo.py', image, config, '--out-dir',
               tmp_path / 'out', '--pred-score-thr', '0')
    with open(tmp_path / 'out' / 'preds' / 'image.json') as f:
        predictions = json.load(f)
    assert len(predictions['masks']) == len(predictions['bboxes']) > 0
    drawn = cv2.imread(str(tmp_path / 'out' / 'vis' / 'image.jpg'))
    assert (np.abs(drawn.astype(int) - 127).sum(axis=2) > 30).mean() > 0.01
