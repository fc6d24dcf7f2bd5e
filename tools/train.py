"""Train a model from an mmdet, mmseg or mmpretrain config.

Same options as mmdet's ``tools/train.py``; works on torch >= 2.6 with safe
checkpoint loading (``--resume``) and with ``--launcher pytorch`` on machines
without a GPU (gloo). Examples::

    python tools/train.py configs/quickstart/retinanet_efficientvit-m0_synthetic.py
    python tools/train.py CONFIG --resume            # latest checkpoint
    bash tools/dist_train.sh CONFIG 2                # 2 processes (DDP)

Every image of the training and validation sets is checked
(``evit_mm.datasets.checked``): a training sample when it is loaded (an
unusable one is replaced by another), the validation set before its first
loop (an unusable sample is left out); each skipped file gets a warning,
and the exit status is 3 when any was (``--strict``: check everything
before training and stop at the first).
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..'))

from mmengine.config import Config  # noqa: E402

from evit_mm.datasets.checked import report_skipped_images  # noqa: E402
from evit_mm.engine import (add_launch_arguments,  # noqa: E402
                            apply_train_options, build_runner,
                            leave_distributed, parse_tool_args)
from evit_mm.engine.image_cli import (add_image_check_arguments,  # noqa: E402
                                      check_run_images)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument('--amp', action='store_true',
                        help='automatic mixed precision (needs a GPU)')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the LR by the actual total batch size')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from this checkpoint, or without a value from the '
        'latest checkpoint in the work dir')
    add_image_check_arguments(parser, dataset=True)
    add_launch_arguments(parser)
    return parse_tool_args(parser, argv)


def main(argv=None) -> int:
    """Train; returns the exit status (0, or 3 if any image was
    skipped)."""
    args = parse_args(argv)
    cfg = apply_train_options(
        Config.fromfile(args.config), args.config, work_dir=args.work_dir,
        amp=args.amp, auto_scale_lr=args.auto_scale_lr, resume=args.resume,
        launcher=args.launcher, cfg_options=args.cfg_options)
    loaders = ['train_dataloader', 'val_dataloader']
    with check_run_images(cfg, args, loaders) as record:
        build_runner(cfg, strict_load=False).train()
        status = report_skipped_images(record)
    leave_distributed()
    return status


if __name__ == '__main__':
    sys.exit(main())
