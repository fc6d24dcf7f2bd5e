"""Check the datasets a config points at before training or testing.

COCO-format detection, segmentation label maps (ADE20K and the other mmseg
layouts) and classification (ImageNet-style folders or annotation files):
each dataset is built as the run builds it, then every problem is printed
on one line naming the file (exit status 1)::

    python tools/analysis_tools/check_dataset.py CONFIG
    python tools/analysis_tools/check_dataset.py CONFIG \
        --dataloaders val_dataloader --check-images
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))

from mmengine.config import Config, DictAction  # noqa: E402

from evit_mm.datasets.validate import (DATALOADERS,  # noqa: E402
                                       DatasetError, check_config_datasets)

MAX_LINES = 20


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config', help='training or test config file')
    parser.add_argument('--dataloaders', nargs='+', choices=DATALOADERS,
                        default=None, help='which datasets (default: those '
                        'of the config\'s dataloaders)')
    parser.add_argument('--check-images', action='store_true',
                        help='decode every image and label map once '
                        '(default: only check that each file exists)')
    parser.add_argument('--max-pixels', type=int,
                        help='the pixel limit of --check-images')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value')
    args = parser.parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    dataloaders = args.dataloaders or [d for d in DATALOADERS if d in cfg]
    try:
        reports = check_config_datasets(cfg, dataloaders, args.check_images,
                                        args.max_pixels)
    except DatasetError as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    for report in reports:
        where = f'{report.dataloader}: {report.dataset}, ' \
            f'{report.samples} samples'
        if not report.problems:
            print(f'{where}: OK')
            continue
        print(f'{where}: {len(report.problems)} problem(s)')
        for line in report.problems[:MAX_LINES]:
            print(f'  {line}')
        if len(report.problems) > MAX_LINES:
            print(f'  ... and {len(report.problems) - MAX_LINES} more')
    return 1 if any(r.problems for r in reports) else 0


if __name__ == '__main__':
    sys.exit(main())
