"""Deploy a whole model of an evit_mm config with mmdeploy 1.3.1.

RetinaNet / Mask R-CNN / Faster R-CNN (NMS and RoI masks in the graph),
Semantic FPN / UperNet / SegFormer (the head's logits; the label map is
drawn after the graph, or in it with --label-map-in-graph) and classifiers
(class scores) go to ONNX through mmdeploy's torch2onnx with dynamic batch,
height and width, then to the backend: ONNX Runtime runs the ONNX file, OpenVINO an IR
converted from it with openvino.convert_model. The deploy configs are in
configs/deploy/. Examples::

    python tools/deployment/deploy.py \\
        configs/quickstart/retinanet_efficientvit-m0_synthetic.py \\
        work_dirs/quickstart/epoch_12.pth \\
        --backend onnxruntime --work-dir work_dirs/deploy/retinanet-ort \\
        --img data/synthetic/coco/val/000000.jpg

Everything is checked before the export starts (backend, opset, files, that
the checkpoint fits the config); the work dir gets end2end.onnx (OpenVINO:
also end2end.xml/.bin), deploy_cfg.py and model_cfg.py, or nothing on
failure. With --img the deployed model also predicts on the image.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))

from evit_mm.deploy.constants import BACKENDS  # noqa: E402
from evit_mm.deploy.mmdeploy_export import deploy_model  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='\n'.join(__doc__.splitlines()[1:]))
    parser.add_argument('config', help='mmdet/mmseg/mmpretrain config')
    parser.add_argument('checkpoint', help='its checkpoint')
    # Not `choices`: an unknown backend gets deploy_model's message.
    parser.add_argument('--backend', required=True,
                        help=f'one of: {", ".join(BACKENDS)}')
    parser.add_argument('--work-dir', required=True,
                        help='folder for the deployed files')
    parser.add_argument('--img', help='image traced (and predicted on); '
                        'default: random pixels of --shape')
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'),
                        help='size of the random image (default 320 320)')
    parser.add_argument('--label-map-in-graph', action='store_true',
                        help='segmentors: the graph outputs the label map '
                        '(resize + argmax in the graph) instead of the '
                        "head's logits")
    parser.add_argument('--opset', type=int,
                        help='ONNX opset (default: the deploy config\'s, 11)')
    return parser.parse_args(argv)


def describe(prediction) -> str:
    """One line about a data sample predicted by the deployed model."""
    if 'pred_instances' in prediction:
        instances = prediction.pred_instances
        return f'{len(instances)} instances, top score ' + (
            f'{instances.scores.max():.3f}' if len(instances) else '-')
    if 'pred_sem_seg' in prediction:
        labels = prediction.pred_sem_seg.data.unique().tolist()
        return f'label map with labels {labels}'
    return f'class {int(prediction.pred_score.argmax())} ' \
        f'(score {prediction.pred_score.max():.3f})'


def main(argv=None) -> int:
    args = parse_args(argv)
    from evit_mm.checkpoint import CheckpointError
    from evit_mm.deploy.mmdeploy_export import DeployError
    try:
        deployment = deploy_model(args.config, args.checkpoint, args.backend,
                                  args.work_dir, args.img, args.shape,
                                  args.opset, args.label_map_in_graph)
    except (DeployError, CheckpointError, FileNotFoundError) as err:
        print(f'deploy.py: error: {err}', file=sys.stderr)
        return 2
    print(f'deployed {args.config} to {args.backend}: '
          f'{", ".join(deployment.backend_files)}')
    if args.img:
        from evit_mm.deploy.backends import DeployedModel
        prediction = DeployedModel(deployment).predict([args.img])[0]
        print(f'{args.img}: {describe(prediction)}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
