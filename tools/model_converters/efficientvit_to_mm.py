"""Convert an official (microsoft/Cream) or timm EfficientViT checkpoint to
evit_mm's format: ``{'state_dict': ..., 'meta': ...}`` with evit_mm names.

An ImageNet classifier (official or timm) becomes ``backbone.*`` and
``head.*``, usable as ``load_from`` for a classifier or as a backbone
``init_cfg``. An official release detector (the mmdet 2.x COCO files of
EfficientViT's downstream code, e.g.
``retinanet_efficientvit_m4_fpn_1x_coco.pth``) becomes a mmdet 3 checkpoint
of evit_mm's RetinaNet / Mask R-CNN configs: backbone and neck renamed,
heads kept, the classes in ``meta['dataset_meta']``, the optimizer state
left out.

Usage:
    python tools/model_converters/efficientvit_to_mm.py SRC DST [--deploy]
"""
import argparse
import os
import os.path as osp
import sys

import torch

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))

from evit_mm.checkpoint import (LAYOUT_NAMES,  # noqa: E402
                                convert_to_evit, extract_state_dict,
                                fuse_state_dict, read_checkpoint)
from evit_mm.models.layers import BN_EPS  # noqa: E402


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


def _dataset_meta(checkpoint: dict) -> dict:
    """mmdet 3's ``dataset_meta`` from an mmdet 2.x ``meta`` (``CLASSES``);
    empty when the file names no classes."""
    meta = checkpoint.get('meta')
    if isinstance(meta, dict) and meta.get('CLASSES') is not None:
        return dict(classes=tuple(meta['CLASSES']))
    return {}


def main() -> None:
    args = parse_args()
    checkpoint = read_checkpoint(args.src)
    state_dict, layout = convert_to_evit(extract_state_dict(checkpoint))
    if args.deploy:
        state_dict = fuse_state_dict(state_dict, BN_EPS)
    meta = dict(source=os.path.basename(args.src), layout=layout,
                deploy=args.deploy)
    dataset_meta = _dataset_meta(checkpoint)
    if dataset_meta:
        meta['dataset_meta'] = dataset_meta
    os.makedirs(os.path.dirname(os.path.abspath(args.dst)), exist_ok=True)
    torch.save(dict(state_dict=state_dict, meta=meta), args.dst)
    parts = {}
    for key in state_dict:
        part = key.split('.', 1)[0]
        parts[part] = parts.get(part, 0) + 1
    print(f'{args.src} ({LAYOUT_NAMES[layout]} layout) -> {args.dst}: ' +
          ', '.join(f'{count} {part}' for part, count in parts.items()) +
          ' tensors' + (f', {len(dataset_meta["classes"])} classes.'
                        if dataset_meta else '.'))


if __name__ == '__main__':
    main()
