"""Check a dataset in the synthetic generator's layouts before training.

Every missing or invalid file is reported by name (exit status 1)::

    python tools/analysis_tools/check_dataset.py data/synthetic/coco coco
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))

from evit_mm.datasets.validate import DatasetError, check_dataset  # noqa


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('root', help='the format folder, e.g. data/'
                        'synthetic/coco')
    parser.add_argument('format', choices=['coco', 'ade', 'imagenet'])
    args = parser.parse_args(argv)
    try:
        counts = check_dataset(args.root, args.format)
    except DatasetError as err:
        print(f'DatasetError: {err}', file=sys.stderr)
        return 1
    print(f'{args.root} ({args.format}): OK, images per split: {counts}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
