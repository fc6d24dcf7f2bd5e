"""Rules every config under ``configs/`` keeps, checked on all of them, so
that a new config cannot break them: ``--auto-scale-lr`` scales from the
batch the file name states, and the top-level ``test_pipeline`` (what
mmdeploy and the inference APIs read) is the one the test dataloader runs.
"""
import glob
import os.path as osp
import re

import pytest

from seg_helpers import load_config
from test_det_configs import _unscoped
from tool_helpers import REPO_ROOT

# mmdeploy's own configs: not models.
ALL_CONFIGS = sorted(
    osp.relpath(path, REPO_ROOT)
    for path in glob.glob(osp.join(REPO_ROOT, 'configs', '**', '*.py'),
                          recursive=True)
    if not path.startswith(osp.join(REPO_ROOT, 'configs', 'deploy', '')))
# OpenMMLab's naming: ..._{GPUs}xb{images per GPU}[-_]...
NAMED_BATCH = re.compile(r'_(\d+)xb(\d+)[-_]')
NAMED = [path for path in ALL_CONFIGS
         if NAMED_BATCH.search(osp.basename(path))]
MODELS = [path for path in ALL_CONFIGS
          if not path.startswith(osp.join('configs', '_base_', ''))]
RTMDET_M0 = 'configs/rtmdet/rtmdet_efficientvit-m0_8xb32-300e_coco.py'


def test_the_configs_are_found():
    folders = {path.split(osp.sep)[1] for path in NAMED}
    assert {'efficientvit', 'rtmdet', 'segformer', 'sem_fpn', 'upernet',
            'baselines', 'examples'} <= folders
    assert RTMDET_M0 in NAMED


@pytest.mark.parametrize('path', NAMED)
def test_auto_scale_lr_base_is_the_named_batch(path):
    gpus, per_gpu = map(int,
                        NAMED_BATCH.search(osp.basename(path)).groups())
    cfg = load_config(osp.join(REPO_ROOT, path))
    assert cfg.train_dataloader.batch_size == per_gpu
    assert cfg.auto_scale_lr.base_batch_size == gpus * per_gpu


@pytest.mark.parametrize('path', MODELS)
def test_every_trainable_config_takes_auto_scale_lr(path):
    """tools/train.py --auto-scale-lr needs a base batch size."""
    cfg = load_config(osp.join(REPO_ROOT, path))
    if 'train_dataloader' in cfg:
        assert cfg.auto_scale_lr.base_batch_size > 0


@pytest.mark.parametrize('path', MODELS)
def test_top_level_test_pipeline_is_the_test_dataloaders(path):
    cfg = load_config(osp.join(REPO_ROOT, path))
    if 'test_dataloader' in cfg:
        # _scope_: added to the transforms of a variable inherited from a
        # toolbox's base
        assert _unscoped(cfg.test_pipeline) == \
            _unscoped(cfg.test_dataloader.dataset.pipeline)


def test_rtmdet_auto_scale_lr_on_one_process(tmp_path):
    """What mmengine's Runner does with tools/train.py --auto-scale-lr for
    RTMDet-M0 in one process with 32 images: the recipe's lr (AdamW 4e-3
    for 8 GPUs x 32 images) times 32 / 256, by the Runner's own scaling
    (the two calls Runner.train makes before its schedulers)."""
    from evit_mm.engine import apply_train_options, build_runner
    cfg = apply_train_options(
        load_config(osp.join(REPO_ROOT, RTMDET_M0)), RTMDET_M0,
        work_dir=str(tmp_path), auto_scale_lr=True)
    assert cfg.optim_wrapper.optimizer.lr == 4e-3
    runner = build_runner(cfg, strict_load=False)
    assert runner.world_size == 1
    optim_wrapper = runner.build_optim_wrapper(runner.optim_wrapper)
    runner.scale_lr(optim_wrapper, runner.auto_scale_lr)
    lrs = [group['lr'] for group in optim_wrapper.optimizer.param_groups]
    assert lrs == pytest.approx([4e-3 * 32 / 256] * len(lrs))
