"""Export an EfficientViT classifier or backbone to ONNX in deploy mode
(every Conv-BN and BN-Linear fused), with dynamic batch, height and width.

Usage:
    # ImageNet classifier (logits), from an official/timm/evit_mm checkpoint
    python tools/deployment/export_onnx.py m4_cls.onnx --arch m4 \\
        --checkpoint efficientvit_m4.pth --verify
    # detection/segmentation backbone (maps at strides 16, 32, 64)
    python tools/deployment/export_onnx.py m4_backbone.onnx --arch m4 \\
        --task backbone --shape 800 1333 --checkpoint efficientvit_m4.pth
    # the model of any mmpretrain/mmdet/mmseg config
    python tools/deployment/export_onnx.py out.onnx --config CONFIG \\
        --checkpoint CKPT --task backbone

Without ``--checkpoint`` the weights are random (for testing the export).
``--verify`` runs the graph in onnxruntime at the export size and at a
second, odd size, and fails unless it matches PyTorch (relative error below
``--tolerance``).
"""
import argparse
import sys
from typing import List, Tuple

import torch
import torch.nn as nn

from evit_mm.checkpoint import load_backbone_checkpoint
from evit_mm.deploy import (TensorMode, build_from_config, export_onnx,
                            ort_session, run_session)
from evit_mm.models import EfficientViT, EfficientViTClassifier
from evit_mm.models.layers import fuse_conv_bn


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='\n'.join(__doc__.splitlines()[1:]))
    parser.add_argument('output', help='path of the .onnx file to write')
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        '--arch', choices=sorted(EfficientViT.arch_zoo), help='preset')
    source.add_argument('--config', help='mmpretrain/mmdet/mmseg config')
    parser.add_argument(
        '--task',
        choices=['classifier', 'backbone'],
        default='classifier',
        help='classifier: logits (with --config: the model in tensor mode); '
        'backbone: the feature maps. Default: classifier')
    parser.add_argument('--checkpoint', help='weights (path or URL)')
    parser.add_argument(
        '--shape',
        type=int,
        nargs=2,
        metavar=('H', 'W'),
        help='example input size (default 224 224 for a classifier, '
        '800 1333 for a backbone)')
    parser.add_argument('--batch', type=int, default=1, help='example batch')
    parser.add_argument(
        '--static',
        action='store_true',
        help='fix batch, height and width to the example (default: dynamic)')
    parser.add_argument('--opset', type=int, default=17)
    parser.add_argument(
        '--verify',
        action='store_true',
        help='compare onnxruntime with PyTorch at two input sizes')
    parser.add_argument('--tolerance', type=float, default=1e-4)
    args = parser.parse_args(argv)
    if args.shape is None:
        args.shape = [224, 224] if args.task == 'classifier' else [800, 1333]
    if min(args.shape) < 1 or args.batch < 1:
        parser.error(f'--shape {args.shape} and --batch {args.batch} must '
                     'be positive.')
    return args


def build_model(args: argparse.Namespace) -> Tuple[nn.Module, List[str]]:
    """The deploy-mode module to export and its output names."""
    if args.config:
        model = build_from_config(args.config, args.checkpoint)
        if args.task == 'classifier':
            fuse_conv_bn(model)
            return TensorMode(model), ['logits']
        module = model.backbone
        fuse_conv_bn(module)
    elif args.task == 'classifier':
        if args.checkpoint:
            module = EfficientViTClassifier.from_checkpoint(
                args.checkpoint, args.arch)
        else:
            module = EfficientViTClassifier(args.arch)
        module.eval().switch_to_deploy()
        return module, ['logits']
    else:
        module = EfficientViT(args.arch)
        if args.checkpoint:
            load_backbone_checkpoint(module, args.checkpoint)
        module.eval().switch_to_deploy()
    if isinstance(module, EfficientViT):
        names = [f'stride{module.strides[i]}' for i in module.out_indices]
    else:
        with torch.no_grad():
            count = len(module(torch.zeros(1, 3, *args.shape)))
        names = [f'out{i}' for i in range(count)]
    return module, names


def verify(module: nn.Module, data: bytes, args: argparse.Namespace) -> bool:
    """Compare onnxruntime and PyTorch; print one line per input size."""
    session = ort_session(data)
    height, width = args.shape
    sizes = [(args.batch, height, width)]
    if not args.static:
        sizes.append((args.batch + 1, height + 37, width + 61))
    ok = True
    for batch, h, w in sizes:
        x = torch.randn(batch, 3, h, w)
        with torch.no_grad():
            expected = module(x)
        expected = expected if isinstance(expected, (tuple, list)) else \
            (expected, )
        errors = [((a - e).abs().max() / e.abs().max().clamp_min(1e-12)).item()
                  for a, e in zip(run_session(session, x), expected)]
        worst = max(errors)
        ok &= worst < args.tolerance
        print(f'verify {batch}x3x{h}x{w}: max relative error {worst:.2e} '
              f'({"ok" if worst < args.tolerance else "FAILED"}, tolerance '
              f'{args.tolerance:g})')
    return ok


def main(argv=None) -> int:
    args = parse_args(argv)
    module, names = build_model(args)
    example = torch.randn(args.batch, 3, *args.shape)
    data = export_onnx(
        module,
        example,
        names,
        filename=args.output,
        dynamic=not args.static,
        opset=args.opset)
    what = args.config or args.arch
    print(f'exported {args.task} of {what} (deploy, '
          f'{"static" if args.static else "dynamic"} batch/height/width, '
          f'opset {args.opset}) to {args.output} '
          f'({len(data) / 2**20:.1f} MiB); outputs: {", ".join(names)}'
          + ('' if args.checkpoint else '; random weights'))
    if args.verify and not verify(module, data, args):
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
