"""A shortened quickstart (tools/quickstart.sh): it generates the data,
trains, evaluates and draws, and its mAP beats the untrained model's."""
import os
import os.path as osp
import re

import pytest
import torch
from mmengine.config import Config

from tool_helpers import run_command, run_script

pytestmark = pytest.mark.slow

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG = osp.join(REPO_ROOT, 'configs', 'quickstart',
                  'retinanet_efficientvit-m0_synthetic.py')


def _untrained_map(tmp_path, coco):
    """bbox mAP of the freshly initialised quickstart model, keeping every
    box (its scores start near the 0.01 prior, below the usual 0.05)."""
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    register_all_modules()
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(CONFIG).model)
    model.init_weights()
    checkpoint = str(tmp_path / 'untrained.pth')
    torch.save({'state_dict': model.state_dict()}, checkpoint)
    log = run_script(
        'tools/test.py', CONFIG, checkpoint, '--work-dir',
        tmp_path / 'untrained', '--cfg-options', 'model.test_cfg.score_thr=0',
        f'test_dataloader.dataset.data_root={coco}/',
        f'test_evaluator.ann_file={coco}/annotations/instances_val.json')
    return float(re.search(r'coco/bbox_mAP: ([\d.]+)', log).group(1))


@pytest.mark.runs('tools/quickstart.sh')
def test_short_quickstart_learns(tmp_path):
    log = run_command(['bash', 'tools/quickstart.sh'], SKIP_INSTALL='1',
                      WORK_DIR=str(tmp_path / 'work'),
                      DATA_DIR=str(tmp_path / 'data'), NUM_TRAIN='400',
                      NUM_VAL='40', EPOCHS='2')
    trained = float(re.search(r'val bbox mAP ([\d.]+)', log).group(1))
    drawings = os.listdir(tmp_path / 'work' / 'predictions' / 'vis')
    assert sorted(drawings) == [f'00000{i}.jpg' for i in range(4)]
    untrained = _untrained_map(tmp_path, tmp_path / 'data' / 'coco')
    assert trained > untrained + 0.02, (trained, untrained)
