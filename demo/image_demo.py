"""Detect objects in images and save them with the boxes (and masks, for
instance-segmentation models) drawn, through mmdet's ``DetInferencer``.

Example::

    python demo/image_demo.py data/synthetic/coco/val/000000.jpg \\
        configs/quickstart/retinanet_efficientvit-m0_synthetic.py \\
        --weights work_dirs/quickstart/epoch_12.pth --out-dir outputs

writes ``outputs/vis/000000.jpg`` (the drawing) and
``outputs/preds/000000.json`` (boxes, labels, scores and RLE masks).
"""
import argparse
import os
import os.path as osp
import sys
from typing import List

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from evit_mm.engine import (allow_mmengine_checkpoints,  # noqa: E402
                            use_safe_checkpoint_loading)

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('inputs', nargs='+',
                        help='image files and/or folders of images')
    parser.add_argument('config', help='model config file')
    parser.add_argument('--weights', help='checkpoint file (a trained '
                        'model; without it the weights are random)')
    parser.add_argument('--out-dir', default='outputs',
                        help='folder for vis/ and preds/')
    parser.add_argument('--pred-score-thr', type=float, default=0.3,
                        help='draw only predictions scoring at least this')
    parser.add_argument('--device', default='cpu', help='e.g. cpu, cuda:0')
    parser.add_argument('--batch-size', type=int, default=1)
    return parser.parse_args(argv)


def image_paths(inputs: List[str]) -> List[str]:
    """The image files named by ``inputs``: files as given, the images of
    folders in name order."""
    paths = []
    for path in inputs:
        if osp.isdir(path):
            paths += [
                osp.join(path, name) for name in sorted(os.listdir(path))
                if name.lower().endswith(IMAGE_EXTENSIONS)
            ]
        elif osp.isfile(path):
            paths.append(path)
        else:
            raise FileNotFoundError(f'No image or folder at {path!r}.')
    if not paths:
        raise FileNotFoundError(f'No images in {inputs}.')
    return paths


def main(argv=None) -> dict:
    args = parse_args(argv)
    images = image_paths(args.inputs)
    from mmdet.apis import DetInferencer
    allow_mmengine_checkpoints()
    use_safe_checkpoint_loading()
    inferencer = DetInferencer(model=args.config, weights=args.weights,
                               device=args.device, show_progress=False)
    results = inferencer(images, batch_size=args.batch_size,
                         out_dir=args.out_dir,
                         pred_score_thr=args.pred_score_thr,
                         no_save_pred=False)
    print(f'{len(results["predictions"])} image(s) drawn in '
          f'{osp.join(args.out_dir, "vis")}, predictions in '
          f'{osp.join(args.out_dir, "preds")}')
    return results


if __name__ == '__main__':
    main()
