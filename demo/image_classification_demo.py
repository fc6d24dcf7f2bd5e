"""Print the top-k classes of an image with an EfficientViT classifier
(mmpretrain's ``ImageClassificationInferencer``).

The checkpoint may be an official (microsoft/Cream) or timm file, local or a
URL, or an mmpretrain checkpoint of evit_mm. Example::

    python demo/image_classification_demo.py IMAGE \\
        configs/efficientvit/efficientvit-m4_8xb256_in1k.py \\
        https://github.com/xinyuliu-jeffrey/EfficientViT_Model_Zoo/releases/download/v1.0/efficientvit_m4.pth
"""
import argparse
import contextlib
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmpretrain.apis import ImageClassificationInferencer  # noqa: E402

from evit_mm.engine import use_safe_checkpoint_loading  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('image', help='image file')
    parser.add_argument('config', help='classification config file')
    parser.add_argument('checkpoint', help='checkpoint file or URL')
    parser.add_argument('--topk', type=int, default=5,
                        help='how many classes to print')
    parser.add_argument('--device', default='cpu', help='e.g. cpu, cuda:0')
    args = parser.parse_args(argv)
    if not osp.isfile(args.image):
        parser.error(f'image {args.image!r} does not exist')
    if args.topk < 1:
        parser.error(f'--topk {args.topk} must be at least 1')
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    use_safe_checkpoint_loading()
    inferencer = ImageClassificationInferencer(
        model=args.config, pretrained=args.checkpoint, device=args.device)
    # The inferencer's progress bar goes to stderr, the ranking to stdout.
    with contextlib.redirect_stdout(sys.stderr):
        scores = inferencer(args.image)[0]['pred_scores']
    if args.topk > len(scores):
        raise SystemExit(f'--topk {args.topk} exceeds the {len(scores)} '
                         'classes of the model.')
    classes = inferencer.classes
    print(f'Top-{args.topk} classes of {args.image}:')
    for rank, index in enumerate(scores.argsort()[::-1][:args.topk], 1):
        name = classes[index] if classes else f'class {index}'
        print(f'{rank}. {name} (index {index}): {scores[index]:.4f}')


if __name__ == '__main__':
    main()
