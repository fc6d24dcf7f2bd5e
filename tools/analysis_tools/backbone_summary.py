"""Build every EfficientViT preset and print its parameters, FLOPs and
feature-map shapes.

Usage:
    python tools/analysis_tools/backbone_summary.py [--shape H W] [--arch m0 ...]
"""
import argparse
import os.path as osp
import sys

import torch
from mmengine.analysis import get_model_complexity_info
from mmengine.logging import MMLogger

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))

from evit_mm.models import EfficientViT  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--shape', type=int, nargs=2, default=[224, 224],
                        metavar=('H', 'W'), help='input height and width')
    parser.add_argument('--arch', nargs='+', default=list(EfficientViT.arch_zoo),
                        choices=list(EfficientViT.arch_zoo))
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    MMLogger.get_instance('mmengine', log_level='ERROR')
    height, width = args.shape
    print(f'EfficientViT backbones at {height}x{width} (window 7, batch 1)')
    print(f'{"arch":<5}{"params (M)":>12}{"FLOPs (G)":>11}  feature maps '
          '(C x H x W) at strides 16 / 32 / 64')
    for arch in args.arch:
        model = EfficientViT(arch).eval()
        x = torch.randn(1, 3, height, width)
        info = get_model_complexity_info(
            model, inputs=(x, ), show_table=False, show_arch=False)
        with torch.no_grad():
            shapes = ' / '.join('x'.join(map(str, f.shape[1:]))
                                for f in model(x))
        print(f'{arch:<5}{info["params"] / 1e6:>12.2f}'
              f'{info["flops"] / 1e9:>11.3f}  {shapes}')


if __name__ == '__main__':
    main()
