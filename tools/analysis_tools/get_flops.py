"""Print the FLOPs (multiply-accumulates, BatchNorm folded, as in the
EfficientViT paper) and parameters of a model.

Usage:
    # the model of an mmpretrain / mmdet / mmseg config
    python tools/analysis_tools/get_flops.py CONFIG [--shape H W] \\
        [--cfg-options KEY=VALUE ...]
    # an ImageNet classifier preset, without a config
    python tools/analysis_tools/get_flops.py --arch m4 [--shape 224]
    # a backbone alone (window 7, for dense prediction)
    python tools/analysis_tools/get_flops.py --arch m4 --task backbone \\
        --shape 800 1333

For the classifier presets at 224x224 the paper's numbers are printed
beside ours.
"""
import argparse
import os.path as osp
import sys
from typing import Tuple

import torch
import torch.nn as nn
from mmengine.analysis.print_helper import complexity_stats_table
from mmengine.config import DictAction

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))

from evit_mm.analysis import PAPER_COMPLEXITY, count_complexity  # noqa: E402
from evit_mm.deploy import TensorMode, build_from_config  # noqa: E402
from evit_mm.models import EfficientViT, EfficientViTClassifier  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='\n'.join(__doc__.splitlines()[1:]))
    parser.add_argument('config', nargs='?', help='config file')
    parser.add_argument(
        '--arch', choices=sorted(EfficientViT.arch_zoo), help='preset')
    parser.add_argument(
        '--task',
        choices=['classifier', 'backbone'],
        default='classifier',
        help='with --arch: the ImageNet classifier (windows 7, 7, 4) or the '
        'backbone alone (window 7); with a config: the whole model in '
        'tensor mode or its backbone. Default: classifier')
    parser.add_argument(
        '--shape',
        type=int,
        nargs='+',
        default=[224],
        help='input size: one value (square) or H W. Default: 224')
    parser.add_argument(
        '--count-bn',
        action='store_true',
        help='also count BatchNorm (a scale and a shift per element)')
    parser.add_argument(
        '--depth',
        type=int,
        default=2,
        help='module depth of the per-module table (0: no table)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='with a config: override its settings, as tools/train.py does '
        '(e.g. model.decode_head.channels=128)')
    args = parser.parse_args(argv)
    if (args.config is None) == (args.arch is None):
        parser.error('give either a CONFIG or --arch.')
    if args.cfg_options and args.config is None:
        parser.error('--cfg-options needs a CONFIG.')
    if len(args.shape) not in (1, 2) or min(args.shape) < 1:
        parser.error(f'--shape {args.shape}: one or two positive sizes.')
    return args


def build_model(args: argparse.Namespace) -> Tuple[nn.Module, str]:
    """The eval-mode module to analyse and a description of it."""
    if args.config:
        model = build_from_config(args.config, cfg_options=args.cfg_options)
        if args.task == 'backbone':
            return model.backbone, f'{args.config} (backbone)'
        return TensorMode(model), args.config
    if args.task == 'backbone':
        return EfficientViT(args.arch).eval(), \
            f'EfficientViT-{args.arch.upper()} backbone (window 7)'
    return EfficientViTClassifier(args.arch).eval(), \
        f'EfficientViT-{args.arch.upper()} classifier (windows 7, 7, 4)'


def main(argv=None) -> int:
    args = parse_args(argv)
    height, width = (args.shape * 2)[:2]
    model, name = build_model(args)
    stats = count_complexity(
        model, (torch.zeros(1, 3, height, width), ), count_bn=args.count_bn)
    if args.depth > 0:
        print(complexity_stats_table(
            stats['analyzer'], max_depth=args.depth, show_param_shapes=False))
    print(f'{name}, input 1x3x{height}x{width}')
    bn = 'BatchNorm counted' if args.count_bn else 'BatchNorm folded'
    print(f'FLOPs: {stats["flops"] / 1e6:.1f} M (multiply-accumulates, {bn})')
    print(f'Params: {stats["params"] / 1e6:.2f} M')
    if stats['unsupported']:
        print(f'Not counted (unknown operators): {stats["unsupported"]}')
    if args.arch and args.task == 'classifier' and (height, width) == (
            224, 224) and not args.count_bn:
        flops, params = PAPER_COMPLEXITY[args.arch]
        flops_diff = stats['flops'] / 1e6 / flops - 1
        params_diff = stats['params'] / 1e6 / params - 1
        print(f'Paper: {flops} M FLOPs ({flops_diff:+.1%}), {params} M params '
              f'({params_diff:+.1%})')
    return 0


if __name__ == '__main__':
    sys.exit(main())
