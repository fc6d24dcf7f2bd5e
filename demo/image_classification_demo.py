"""Print the top-k classes of images with an EfficientViT classifier
(mmpretrain's ``ImageClassificationInferencer``).

The checkpoint may be an official (microsoft/Cream) or timm file, local or a
URL, or an mmpretrain checkpoint of evit_mm. Example::

    python demo/image_classification_demo.py IMAGE_OR_FOLDER \\
        configs/efficientvit/efficientvit-m4_8xb256_in1k.py \\
        https://github.com/xinyuliu-jeffrey/EfficientViT_Model_Zoo/releases/download/v1.0/efficientvit_m4.pth

Each input is checked first (``evit_mm.datasets.images``): a file that
cannot be used is skipped with one warning line, the others are classified,
and the exit status is 3 when any was skipped (``--strict``: stop at the
first).
"""
import argparse
import contextlib
import os.path as osp
import sys

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..'))

from evit_mm.checkpoint import read_checkpoint  # noqa: E402
from evit_mm.engine.image_cli import (add_image_check_arguments,  # noqa: E402
                                      demo_images, require_scope)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('inputs', nargs='+',
                        help='image files and/or folders of images')
    parser.add_argument('config', help='classification config file')
    parser.add_argument('checkpoint', help='checkpoint file or URL')
    parser.add_argument('--topk', type=int, default=5,
                        help='how many classes to print')
    parser.add_argument('--device', default='cpu', help='e.g. cpu, cuda:0')
    add_image_check_arguments(parser)
    args = parser.parse_args(argv)
    if args.topk < 1:
        parser.error(f'--topk {args.topk} must be at least 1')
    return args


def main(argv=None) -> int:
    """Run the demo; returns the exit status (0, or 3 if any input was
    skipped)."""
    args = parse_args(argv)
    require_scope(args.config, 'mmpretrain')
    scan = demo_images(args.inputs, None, args.strict, args.max_pixels)
    # refuses a file that carries code (CheckpointError naming it) and
    # checks a URL into the cache the inferencer then reads
    read_checkpoint(args.checkpoint)
    from mmpretrain.apis import ImageClassificationInferencer
    inferencer = ImageClassificationInferencer(
        model=args.config, pretrained=args.checkpoint, device=args.device)
    classes = inferencer.classes
    # The inferencer's progress bar goes to stderr, the rankings to stdout.
    with contextlib.redirect_stdout(sys.stderr):
        results = inferencer([image.path for image in scan.images])
    for image, result in zip(scan.images, results):
        scores = result['pred_scores']
        if args.topk > len(scores):
            raise SystemExit(f'--topk {args.topk} exceeds the {len(scores)} '
                             'classes of the model.')
        print(f'Top-{args.topk} classes of {image.path} '
              f'({image.width}x{image.height}):')
        for rank, index in enumerate(scores.argsort()[::-1][:args.topk], 1):
            name = classes[index] if classes else f'class {index}'
            print(f'{rank}. {name} (index {index}): {scores[index]:.4f}')
    print(scan.summary())
    return scan.exit_code


if __name__ == '__main__':
    sys.exit(main())
