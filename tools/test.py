"""Test (and evaluate) a checkpoint with an mmdet, mmseg or mmpretrain config.

Same options as mmdet's ``tools/test.py``; ``--out`` and ``--show-dir``
behave as in the config's own toolbox. Example::

    python tools/test.py CONFIG work_dirs/NAME/epoch_12.pth --show-dir vis

Before testing, every image of the test set is checked
(``evit_mm.datasets.checked``): an unusable one is skipped with a warning
and left out, and the exit status is 3 when any was (``--strict``: stop at
the first).
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..'))

from mmengine.config import Config  # noqa: E402

from evit_mm.datasets.checked import report_skipped_images  # noqa: E402
from evit_mm.engine import (add_launch_arguments,  # noqa: E402
                            apply_test_options, build_runner,
                            leave_distributed, parse_tool_args)
from evit_mm.engine.image_cli import (add_image_check_arguments,  # noqa: E402
                                      check_run_images)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Test (and evaluate) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir',
                        help='the dir to save the evaluation metrics')
    parser.add_argument(
        '--out', help='dump the predictions: a .pkl file (detection, '
        'classification) or a folder of label maps (segmentation)')
    parser.add_argument('--show', action='store_true',
                        help='show the predictions in a window')
    parser.add_argument(
        '--show-dir', help='save images with the predictions drawn here '
        '(detection: under WORK_DIR/TIMESTAMP/)')
    parser.add_argument('--wait-time', type=float, default=2,
                        help='seconds each --show image stays up')
    parser.add_argument('--tta', action='store_true',
                        help='test-time augmentation (tta_model and '
                        'tta_pipeline of the config)')
    parser.add_argument('--amp', action='store_true',
                        help='test in mixed precision')
    add_image_check_arguments(parser, dataset=True)
    add_launch_arguments(parser)
    return parse_tool_args(parser, argv)


def main(argv=None) -> int:
    """Test; returns the exit status (0, or 3 if any image was
    skipped)."""
    args = parse_args(argv)
    cfg = apply_test_options(
        Config.fromfile(args.config), args.config, args.checkpoint,
        work_dir=args.work_dir, out=args.out, show=args.show,
        show_dir=args.show_dir, wait_time=args.wait_time, tta=args.tta,
        amp=args.amp, launcher=args.launcher, cfg_options=args.cfg_options)
    with check_run_images(cfg, args, ['test_dataloader'],
                          out=args.out) as record:
        build_runner(cfg, strict_load=True).test()
        status = report_skipped_images(record)
    leave_distributed()
    return status


if __name__ == '__main__':
    sys.exit(main())
