"""The segmentation quickstart through the user-facing tools: a short
``tools/train.py`` run on a small synthetic ADE20K-style set raises val mIoU,
and ``tools/test.py --show-dir`` writes predictions in the palette colours."""
import glob
import json
import os.path as osp

import cv2
import numpy as np
import pytest

from evit_mm.datasets.synthetic import generate

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG = osp.join(REPO_ROOT, 'configs', 'quickstart',
                  'fpn_efficientvit-m0_synthetic.py')
ITERS = 60


def _load_tool(name):
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        f'evit_tools_{name}', osp.join(REPO_ROOT, 'tools', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _data_options(data_root):
    return [
        f'{loader}.dataset.data_root={data_root}'
        for loader in ('train_dataloader', 'val_dataloader',
                       'test_dataloader')
    ] + [f'{loader}.num_workers=0' for loader in (
        'train_dataloader', 'val_dataloader', 'test_dataloader')] + [
            f'{loader}.persistent_workers=False' for loader in (
                'train_dataloader', 'val_dataloader', 'test_dataloader')
        ]


def _val_history(work_dir):
    scalars, = glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))
    with open(scalars) as f:
        records = [json.loads(line) for line in f]
    return [(r['step'], r['mIoU']) for r in records if 'mIoU' in r]


@pytest.mark.slow
def test_quickstart_trains_and_shows(tmp_path):
    data_root = generate(str(tmp_path / 'data'), formats=('ade', ),
                         num_train=32, num_val=8, img_size=(128, 128))['ade']
    work_dir = str(tmp_path / 'work')
    # validate after the first iteration (val_interval 1 until iteration 3)
    # and at the end, to compare an untrained model with a trained one
    _load_tool('train').main([
        CONFIG, '--work-dir', work_dir, '--cfg-options',
        f'train_cfg.max_iters={ITERS}', 'train_cfg.val_interval=1',
        f'train_cfg.dynamic_intervals=[(3,{ITERS})]',
        f'param_scheduler.1.end={ITERS}', *_data_options(data_root)
    ])
    history = _val_history(work_dir)
    assert [step for step, _ in history] == [1, ITERS]
    (_, before), (_, after) = history
    assert after > before + 10, history  # mIoU in percent

    show_dir = str(tmp_path / 'show')
    checkpoint = osp.join(work_dir, f'iter_{ITERS}.pth')
    metrics = _load_tool('test').main([
        CONFIG, checkpoint, '--work-dir', work_dir, '--show-dir', show_dir,
        '--cfg-options', *_data_options(data_root)
    ])
    assert metrics['mIoU'] == pytest.approx(after, abs=0.01)
    drawn = sorted(glob.glob(osp.join(show_dir, '**', '*.png'),
                             recursive=True))
    assert len(drawn) == 8
    image = cv2.imread(drawn[0])[..., ::-1]  # RGB
    height, width = image.shape[:2]
    assert (height, width) == (128, 128 * 2) or (height, width) == (128, 128)
    palette = np.array([(220, 20, 60), (0, 130, 230), (250, 170, 30)])
    blended = image.reshape(-1, 1, 3).astype(int)
    near_class = (np.abs(blended - palette).sum(-1) < 200).any(-1)
    assert near_class.mean() > 0.01
