"""The classification quickstart as a user runs it, shortened: write the
synthetic ImageNet-style folders, train the quickstart config with
``tools/train.py``, evaluate with ``tools/test.py``."""
import os
import os.path as osp
import re
import subprocess
import sys

import pytest

pytest.importorskip('mmpretrain')

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG = 'configs/quickstart/efficientvit-m0_synthetic.py'
EPOCHS = 6  # 282 iterations of 64 images; the quickstart runs 1504


def run(args, cwd=REPO):
    env = dict(os.environ, OMP_NUM_THREADS='1')
    result = subprocess.run([sys.executable, *args], cwd=cwd, env=env,
                            capture_output=True, text=True)
    assert result.returncode == 0, \
        result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout + result.stderr


@pytest.mark.slow
def test_quickstart_trains_and_tests(tmp_path):
    data = tmp_path / 'synthetic'
    run(['tools/dataset_converters/make_synthetic_data.py', str(data),
         '--formats', 'imagenet', '--num-train', '3000', '--num-val', '150',
         '--img-size', '128'])
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
    run(['tools/train.py', CONFIG, '--work-dir', work_dir, *options])
    checkpoint = osp.join(work_dir, f'epoch_{EPOCHS}.pth')
    assert osp.isfile(checkpoint)
    output = run(['tools/test.py', CONFIG, checkpoint, '--work-dir',
                  work_dir, *options])
    top1 = float(re.findall(r'accuracy/top1: ([\d.]+)', output)[-1])
    top2 = float(re.findall(r'accuracy/top2: ([\d.]+)', output)[-1])
    # Chance is 33.3 / 66.7.
    assert top1 >= 55 and top2 >= 80
