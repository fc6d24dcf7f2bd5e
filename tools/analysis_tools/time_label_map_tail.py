"""Time, alone, the tail of a deployed segmentor: the label map drawn from
its class logits. Old: the resize (bilinear, half-pixel) to the input size
and the argmax over the classes as a graph in ONNX Runtime and OpenVINO (the
tail of a graph deployed with --label-map-in-graph). New: the exact pruned
tail after a graph that ends at the head's logits
(evit_mm.deploy.label_map.LabelMapTail, on the same backend for its dense
fallback). Median (p10-p90) of interleaved runs, on logits like a trained
segmentor's (a region's class ahead by a margin, the regions of a synthetic
ADE20K-layout scene, noise) and on noise (the new tail's worst case), with
the fraction of boundary cells.

Example (SegFormer-M0's stride-8 and SegFormer-B0's stride-4 logits of
ADE20K's 150 classes at 512x512)::

    python tools/analysis_tools/time_label_map_tail.py --size 512 \\
        --logit-sizes 64 128
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))

import numpy as np  # noqa: E402

from evit_mm.analysis.label_map_tail import (random_logits,  # noqa: E402
                                             realistic_logits, tail_line,
                                             time_tails)
from evit_mm.datasets.synthetic import make_scene, scene_label_map  # noqa
from evit_mm.deploy.constants import BACKENDS  # noqa: E402

# realistic_logits draws a scene's classes (up to 7) among --classes.
MIN_CLASSES = 8


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--size', type=int, default=512,
                        help='side of the input, and of the label map')
    parser.add_argument('--logit-sizes', type=int, nargs='+',
                        default=[64, 128], help='sides of the logits')
    parser.add_argument('--classes', type=int, default=150)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--repeat', type=int, default=10)
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the scene and the noise')
    args = parser.parse_args(argv)
    for name in ('size', 'threads', 'repeat'):
        if getattr(args, name) < 1:
            parser.error(f'--{name} must be >= 1, got {getattr(args, name)}')
    if args.classes < MIN_CLASSES:
        parser.error(f'--classes must be >= {MIN_CLASSES}, got '
                     f'{args.classes}')
    if min(args.logit_sizes) < 1:
        parser.error(f'--logit-sizes must be >= 1, got {args.logit_sizes}')
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    size = (args.size, args.size)
    scene = scene_label_map(
        make_scene(np.random.default_rng(args.seed), args.size, args.size))
    for logit_size in args.logit_sizes:
        print(f'{args.classes} classes {logit_size}x{logit_size} -> '
              f'{args.size}x{args.size}, {args.threads} threads:')
        logits = dict(
            realistic=realistic_logits(scene, args.seed, args.classes,
                                       logit_size),
            random=random_logits(args.seed, args.classes, logit_size))
        for row in time_tails(logits, size, args.threads, args.repeat,
                              BACKENDS):
            print('  ' + tail_line(row), flush=True)


if __name__ == '__main__':
    main()
