"""Detect objects in images and save them with the boxes (and masks, for
instance-segmentation models) drawn, through mmdet's ``DetInferencer``.

Example::

    python demo/image_demo.py data/synthetic/coco/val/000000.jpg \\
        configs/quickstart/retinanet_efficientvit-m0_synthetic.py \\
        --weights work_dirs/quickstart/epoch_12.pth --out-dir outputs

writes ``outputs/vis/000000.jpg`` (the drawing) and
``outputs/preds/000000.json`` (boxes, labels, scores and RLE masks).

Each input is checked first (``evit_mm.datasets.images``): a file that
cannot be used is skipped with one warning line, the others are drawn, and
the exit status is 3 when any was skipped (``--strict``: stop at the first).
Segmentation configs go to ``demo/image_seg_demo.py``, classification ones
to ``demo/image_classification_demo.py``.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..'))

from evit_mm.checkpoint import read_checkpoint  # noqa: E402
from evit_mm.engine.image_cli import (build_inferencer,  # noqa: E402
                                      demo_images, demo_parser,
                                      require_scope)


def parse_args(argv=None) -> argparse.Namespace:
    parser = demo_parser(__doc__.split('\n\n')[0], 'detection')
    parser.add_argument('--pred-score-thr', type=float, default=0.3,
                        help='draw only predictions scoring at least this')
    parser.add_argument('--batch-size', type=int, default=1)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    """Run the demo; returns the exit status (0, or 3 if any input was
    skipped)."""
    args = parse_args(argv)
    cfg = require_scope(args.config, 'mmdet')
    scan = demo_images(args.inputs, args.out_dir, args.strict,
                       args.max_pixels)
    if args.weights:
        # refuses a file that carries code (CheckpointError naming it) and
        # checks a URL into the cache the inferencer then reads
        read_checkpoint(args.weights)
    from mmdet.apis import DetInferencer
    inferencer = build_inferencer(DetInferencer, cfg, weights=args.weights,
                                  device=args.device, show_progress=False)
    inferencer([image.path for image in scan.images],
               batch_size=args.batch_size, out_dir=args.out_dir,
               pred_score_thr=args.pred_score_thr, no_save_pred=False)
    print(f'{len(scan.images)} image(s) drawn in '
          f'{osp.join(args.out_dir, "vis")}, predictions in '
          f'{osp.join(args.out_dir, "preds")}')
    print(scan.summary())
    return scan.exit_code


if __name__ == '__main__':
    sys.exit(main())
