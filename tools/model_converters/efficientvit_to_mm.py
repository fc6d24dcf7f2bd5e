"""Convert an official (microsoft/Cream) or timm EfficientViT checkpoint to
evit_mm's format: ``{'state_dict': {'backbone.*', 'head.*'}, 'meta': ...}``,
usable as ``load_from`` for a classifier or as a backbone ``init_cfg``.

Usage:
    python tools/model_converters/efficientvit_to_mm.py SRC DST [--deploy]
"""
import argparse
import os
import os.path as osp
import sys

import torch

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))

from evit_mm.checkpoint import (convert_to_evit,  # noqa: E402
                                extract_state_dict, fuse_state_dict,
                                read_checkpoint)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('src', help='official/timm checkpoint (.pth, '
                        '.safetensors) or URL')
    parser.add_argument('dst', help='output .pth path')
    parser.add_argument(
        '--deploy',
        action='store_true',
        help='fuse Conv-BN and BN-Linear pairs (for deploy=True models)')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    state_dict, layout = convert_to_evit(
        extract_state_dict(read_checkpoint(args.src)))
    if args.deploy:
        state_dict = fuse_state_dict(state_dict)
    os.makedirs(os.path.dirname(os.path.abspath(args.dst)), exist_ok=True)
    torch.save(
        dict(
            state_dict=state_dict,
            meta=dict(source=os.path.basename(args.src), layout=layout,
                      deploy=args.deploy)), args.dst)
    heads = sum(k.startswith('head.') for k in state_dict)
    print(f'{args.src} ({layout} layout) -> {args.dst}: '
          f'{len(state_dict) - heads} backbone and {heads} head tensors.')


if __name__ == '__main__':
    main()
