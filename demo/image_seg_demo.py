"""Segment images with an EfficientViT semantic segmentation model and save
the label maps and drawings, through mmseg's ``MMSegInferencer``.

Example::

    python demo/image_seg_demo.py data/synthetic/ade/images/validation \\
        configs/quickstart/fpn_efficientvit-m0_synthetic.py \\
        --weights work_dirs/fpn_efficientvit-m0_synthetic/iter_1000.pth \\
        --out-dir outputs

writes, for each ``NAME.EXT``, ``outputs/vis/NAME.EXT`` (the classes drawn
over the image, as a photo viewer shows it) and ``outputs/preds/NAME.png`` (the label map, one class
index per pixel, the size of the image as a viewer shows it). The class
names and colours are the config's (``test_dataloader.dataset.metainfo``)
when it has them.

Each input is checked first (``evit_mm.datasets.images``): a file that
cannot be used is skipped with one warning line, the others are segmented,
and the exit status is 3 when any was skipped (``--strict``: stop at the
first).
"""
import argparse
import os
import os.path as osp
import sys

import cv2
import mmcv
import numpy as np

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..'))

from evit_mm.checkpoint import read_checkpoint  # noqa: E402
from evit_mm.engine.image_cli import (build_inferencer,  # noqa: E402
                                      demo_images, demo_parser,
                                      require_scope)


def parse_args(argv=None) -> argparse.Namespace:
    parser = demo_parser(__doc__.split('\n\n')[0], 'segmentation')
    parser.add_argument('--opacity', type=float, default=0.5,
                        help='opacity of the drawn classes, 0..1')
    args = parser.parse_args(argv)
    if not 0 <= args.opacity <= 1:
        parser.error(f'--opacity {args.opacity} must be in 0..1')
    return args


def draw_labels(image: np.ndarray, labels: np.ndarray, palette: np.ndarray,
                opacity: float) -> np.ndarray:
    """``image`` (BGR) blended with the RGB ``palette`` colour of each
    pixel's label. (mmseg 1.2.2's ``SegLocalVisualizer`` fails on
    one-pixel images with an ``IndexError``, hence this.)"""
    colors = palette[labels % len(palette)][..., ::-1]
    return np.round(image * (1 - opacity) + colors * opacity).astype(
        np.uint8)


def main(argv=None) -> int:
    """Run the demo; returns the exit status (0, or 3 if any input was
    skipped)."""
    args = parse_args(argv)
    cfg = require_scope(args.config, 'mmseg')
    scan = demo_images(args.inputs, args.out_dir, args.strict,
                       args.max_pixels)
    if args.weights:
        # refuses a file that carries code (CheckpointError naming it) and
        # checks a URL into the cache the inferencer then reads
        read_checkpoint(args.weights)
    from mmseg.apis import MMSegInferencer
    inferencer = build_inferencer(MMSegInferencer, cfg, weights=args.weights,
                                  device=args.device)
    metainfo = cfg.get('test_dataloader', {}).get('dataset', {}).get(
        'metainfo', {})
    if metainfo.get('classes'):
        inferencer.model.dataset_meta = dict(
            classes=metainfo['classes'], palette=metainfo.get('palette'))
    inferencer.show_progress = False
    palette = np.array(inferencer.model.dataset_meta['palette'], np.uint8)
    vis_dir = osp.join(args.out_dir, 'vis')
    pred_dir = osp.join(args.out_dir, 'preds')
    os.makedirs(vis_dir, exist_ok=True)
    os.makedirs(pred_dir, exist_ok=True)
    for image in scan.images:
        sample = inferencer(image.path, return_datasamples=True)
        labels = sample.pred_sem_seg.data[0].cpu().numpy()
        name = osp.basename(image.path)
        cv2.imwrite(osp.join(pred_dir, osp.splitext(name)[0] + '.png'),
                    labels.astype(np.uint16 if len(palette) > 256 else
                                  np.uint8))
        cv2.imwrite(osp.join(vis_dir, name),
                    draw_labels(mmcv.imread(image.path), labels, palette,
                                args.opacity))
    print(f'{len(scan.images)} image(s) drawn in {vis_dir}, label maps in '
          f'{pred_dir}')
    print(scan.summary())
    return scan.exit_code


if __name__ == '__main__':
    sys.exit(main())
