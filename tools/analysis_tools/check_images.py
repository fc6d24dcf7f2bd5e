"""Check image files the way the demos and tools do before a run, and time
it beside the pipelines' own decoding.

Each unusable file gets one warning line with the reason; the exit status
is 3 when any was skipped (1 with ``--strict`` at the first)::

    python tools/analysis_tools/check_images.py data/synthetic/imagenet/val/*
"""
import argparse
import os.path as osp
import sys
import time

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))

from evit_mm.engine.image_cli import (add_image_check_arguments,  # noqa: E402
                                      demo_images)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('inputs', nargs='+',
                        help='image files and/or folders of images')
    parser.add_argument(
        '--time-decode', action='store_true',
        help='also time mmcv.imread (what the pipelines\' LoadImageFromFile '
        'does) over the usable images, for comparison')
    add_image_check_arguments(parser)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    scan = demo_images(args.inputs, None, args.strict, args.max_pixels)
    seconds = time.perf_counter() - start
    count = len(scan.images) + len(scan.skipped)
    print(f'check_image: {count} file(s) in {seconds:.2f} s '
          f'({1000 * seconds / count:.2f} ms each)')
    if args.time_decode:
        import mmcv
        start = time.perf_counter()
        for image in scan.images:
            mmcv.imread(image.path)
        seconds = time.perf_counter() - start
        print(f'mmcv.imread: {len(scan.images)} image(s) in {seconds:.2f} s '
              f'({1000 * seconds / len(scan.images):.2f} ms each)')
    print(scan.summary())
    return scan.exit_code


if __name__ == '__main__':
    sys.exit(main())
