"""Write the synthetic shapes dataset (circle, square, triangle on cluttered
backgrounds) in COCO, ADE20K-style and ImageNet-style layouts.

Example::

    python tools/dataset_converters/make_synthetic_data.py data/synthetic \\
        --formats coco ade imagenet --num-train 200 --num-val 50 \\
        --img-size 256 --seed 0

See :mod:`evit_mm.datasets.synthetic` for the layouts and label semantics.
"""
import argparse
import os.path as osp
import sys
import time

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))

from evit_mm.datasets.synthetic import FORMATS, generate  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('out_dir', help='output root; each format is '
                        'written to OUT_DIR/<format>')
    parser.add_argument('--formats', nargs='+', default=list(FORMATS),
                        choices=FORMATS, help='layouts to write')
    parser.add_argument('--num-train', type=int, default=200,
                        help='training images per format')
    parser.add_argument('--num-val', type=int, default=50,
                        help='validation images per format')
    parser.add_argument('--img-size', type=int, nargs='+', default=[256],
                        metavar='SIZE', help='SIDE, or WIDTH HEIGHT')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--skip-existing', action='store_true',
        help='keep a format whose meta.json records the same arguments')
    args = parser.parse_args(argv)
    if len(args.img_size) not in (1, 2):
        parser.error(f'--img-size takes SIDE or WIDTH HEIGHT, got '
                     f'{args.img_size}')
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    width, height = (args.img_size * 2)[:2]
    start = time.time()
    written = generate(args.out_dir, args.formats, args.num_train,
                       args.num_val, (width, height), args.seed,
                       skip_existing=args.skip_existing)
    for fmt, root in written.items():
        print(f'{fmt}: {root}')
    print(f'{args.num_train} train + {args.num_val} val images of '
          f'{width}x{height} per format in {time.time() - start:.1f} s')


if __name__ == '__main__':
    main()
