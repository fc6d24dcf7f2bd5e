"""The segmentation quickstart through the user-facing tools: a short
``tools/train.py`` run on a small synthetic ADE20K-style set raises val mIoU,
and ``tools/test.py --show-dir`` writes predictions in the palette colours."""
import glob
import json
import os.path as osp
import re

import cv2
import numpy as np
import pytest

from evit_mm.datasets.synthetic import generate
from tool_helpers import run_script

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG = osp.join(REPO_ROOT, 'configs', 'quickstart',
                  'fpn_efficientvit-m0_synthetic.py')
ITERS = 60
PALETTE = np.array([(0, 0, 0), (220, 20, 60), (0, 130, 230), (250, 170, 30)],
                   dtype=float)  # the config's


def _data_options(data_root):
    loaders = ('train_dataloader', 'val_dataloader', 'test_dataloader')
    return [f'{loader}.dataset.data_root={data_root}' for loader in loaders
            ] + [f'{loader}.num_workers=0' for loader in loaders
                 ] + [f'{loader}.persistent_workers=False' for loader in loaders]


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
    # and at the end, to compare an untrained model with a trained one; a
    # seeded run with a 10-iteration warm-up
    run_script('tools/train.py', CONFIG, '--work-dir', work_dir,
               '--cfg-options', f'train_cfg.max_iters={ITERS}',
               'train_cfg.val_interval=1',
               f'train_cfg.dynamic_intervals=[(3,{ITERS})]',
               'param_scheduler.0.end=10', 'param_scheduler.1.begin=10',
               f'param_scheduler.1.end={ITERS}', 'randomness.seed=0',
               'model.data_preprocessor.size=(128,128)',
               *_data_options(data_root))
    history = _val_history(work_dir)
    assert [step for step, _ in history] == [1, ITERS]
    (_, before), (_, after) = history
    assert after > before + 10, history  # mIoU in percent

    show_dir, out_dir = str(tmp_path / 'show'), str(tmp_path / 'labels')
    checkpoint = osp.join(work_dir, f'iter_{ITERS}.pth')
    log = run_script('tools/test.py', CONFIG, checkpoint, '--work-dir',
                     work_dir, '--out', out_dir, '--show-dir', show_dir,
                     '--cfg-options', *_data_options(data_root))
    assert f'mIoU: {after:.4f}' in log
    drawn = sorted(glob.glob(osp.join(show_dir, '**', '*.png'),
                             recursive=True))
    assert len(drawn) == 8
    for path in drawn[:3]:
        stem = re.search(r'(\d{6})\.jpg', osp.basename(path)).group(1)
        image = cv2.imread(osp.join(data_root, 'images', 'validation',
                                    f'{stem}.jpg'))[..., ::-1]
        gt = cv2.imread(osp.join(data_root, 'annotations', 'validation',
                                 f'{stem}.png'), cv2.IMREAD_UNCHANGED)
        pred = cv2.imread(osp.join(out_dir, f'{stem}.png'),
                          cv2.IMREAD_UNCHANGED)
        drawing = cv2.imread(path)[..., ::-1]
        assert drawing.shape == (128, 256, 3)  # ground truth | prediction
        # class labels drawn as text cover a little of each half
        assert (_decode(drawing[:, :128], image) == gt).mean() > 0.8
        assert (_decode(drawing[:, 128:], image) == pred).mean() > 0.8


def _decode(drawn, image):
    """Class of each pixel of ``drawn``, a drawing of ``image`` blended with
    the class colours (mmseg's SegLocalVisualizer, alpha 0.8)."""
    candidates = (image[None].astype(float) * 0.2 +
                  PALETTE[:, None, None] * 0.8)
    errors = np.abs(candidates - drawn[None]).sum(-1)
    return errors.argmin(0)
