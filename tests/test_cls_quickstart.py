"""The classification quickstart as a user runs it, shortened: write the
synthetic ImageNet-style folders, train the quickstart config with
``tools/train.py``, evaluate with ``tools/test.py``."""
import os.path as osp
import re

import pytest

from tool_helpers import run_script

pytest.importorskip('mmpretrain')

CONFIG = 'configs/quickstart/efficientvit-m0_synthetic.py'
EPOCHS = 6  # 282 iterations of 64 images; the quickstart runs 1504


@pytest.mark.slow
@pytest.mark.runs('tools/dataset_converters/make_synthetic_data.py',
                  '--formats', '--num-train', '--num-val', '--img-size')
@pytest.mark.runs('tools/train.py', '--work-dir', '--cfg-options')
@pytest.mark.runs('tools/test.py', '--work-dir', '--cfg-options')
def test_quickstart_trains_and_tests(tmp_path):
    data = tmp_path / 'synthetic'
    run_script('tools/dataset_converters/make_synthetic_data.py', data,
               '--formats', 'imagenet', '--num-train', '3000', '--num-val',
               '150', '--img-size', '128')
    root = str(data / 'imagenet')
    options = [
        '--cfg-options', f'train_dataloader.dataset.data_root={root}',
        f'val_dataloader.dataset.data_root={root}',
        f'test_dataloader.dataset.data_root={root}',
        f'train_cfg.max_epochs={EPOCHS}', f'train_cfg.val_interval={EPOCHS}',
        f'param_scheduler.1.end={EPOCHS}',
        f'default_hooks.checkpoint.interval={EPOCHS}'
    ]
    work_dir = str(tmp_path / 'work')
    run_script('tools/train.py', CONFIG, '--work-dir', work_dir, *options)
    checkpoint = osp.join(work_dir, f'epoch_{EPOCHS}.pth')
    assert osp.isfile(checkpoint)
    output = run_script('tools/test.py', CONFIG, checkpoint, '--work-dir',
                        work_dir, *options)
    top1 = float(re.findall(r'accuracy/top1: ([\d.]+)', output)[-1])
    top2 = float(re.findall(r'accuracy/top2: ([\d.]+)', output)[-1])
    # Chance is 33.3 / 66.7.
    assert top1 >= 55 and top2 >= 80
