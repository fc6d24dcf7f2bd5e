"""Whole detectors and segmentors on the CPU, batch 1, eval, random weights,
each beside the stock model of its family that a user would take instead.

RetinaNet and Semantic FPN with EfficientViT beside the stock mmdet / mmseg
models with ResNet-18 and MobileNetV2, and the real-time models, RTMDet and
SegFormer with EfficientViT, beside the stock RTMDet-tiny, RTMDet-s and
SegFormer-B0; in PyTorch, ONNX Runtime and OpenVINO (mmdeploy's export,
post-processing in the graph): img/s, the share of the time spent in the
backbone (timed alone on the same input), parameters and FLOPs, and the
speed against each family's peer (RetinaNet-R18, Semantic FPN-R18,
RTMDet-tiny, SegFormer-B0) on the same backend.

Timings interleave the models (one call of each in turn, the order rotated
every round) so that a busy machine slows all of them alike; the median and
the 10th-90th percentile spread are printed.

Usage:
    python tools/analysis_tools/benchmark.py [--threads N] [--json out.json]
    python tools/analysis_tools/benchmark.py \\
        --models retinanet-m0 retinanet-r18 --det-sizes 800x1333
    python tools/analysis_tools/benchmark.py --models rtmdet-m0 rtmdet-m4 \\
        rtmdet-tiny rtmdet-s segformer-m0 segformer-b0
"""
import argparse
import os
import os.path as osp
import sys
from typing import Optional

import numpy as np

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))

from evit_mm.analysis import whole_model  # noqa: E402
from evit_mm.analysis.timing import (benchmark_parser,  # noqa: E402
                                     describe, environment, finish,
                                     shape_type, use_threads)
from evit_mm.datasets.synthetic import make_scene, scene_label_map  # noqa
from evit_mm.deploy.constants import BACKENDS  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
# The whole models: EfficientViT's (the COCO / ADE20K configs, the
# quickstart ones and a lighter neck and head) and the peers an mmdet /
# mmseg user would take instead (the stock configs, configs/baselines/).
# A name's first word is its family (FAMILIES).
DETECTORS = {
    'retinanet-m0':
    'configs/retinanet/retinanet_efficientvit-m0_fpn_1x_coco.py',
    'retinanet-m0-fpn128':
    'configs/retinanet/retinanet_efficientvit-m0_fpn-128_1x_coco.py',
    'retinanet-m0-quickstart':
    'configs/quickstart/retinanet_efficientvit-m0_synthetic.py',
    'retinanet-m4':
    'configs/retinanet/retinanet_efficientvit-m4_fpn_1x_coco.py',
    'retinanet-r18': 'mmdet::retinanet/retinanet_r18_fpn_1x_coco.py',
    'retinanet-mobilenetv2':
    'configs/baselines/retinanet_mobilenet-v2_fpn_1x_coco.py',
    'rtmdet-m0': 'configs/rtmdet/rtmdet_efficientvit-m0_8xb32-300e_coco.py',
    'rtmdet-m4': 'configs/rtmdet/rtmdet_efficientvit-m4_8xb32-300e_coco.py',
    'rtmdet-tiny': 'mmdet::rtmdet/rtmdet_tiny_8xb32-300e_coco.py',
    'rtmdet-s': 'mmdet::rtmdet/rtmdet_s_8xb32-300e_coco.py',
}
SEGMENTORS = {
    'fpn-m0': 'configs/sem_fpn/fpn_efficientvit-m0_4xb8-40k_ade20k-512x512.py',
    'fpn-m0-quickstart': 'configs/quickstart/fpn_efficientvit-m0_synthetic.py',
    'fpn-m4': 'configs/sem_fpn/fpn_efficientvit-m4_4xb8-40k_ade20k-512x512.py',
    'fpn-r18': 'configs/baselines/fpn_r18_4xb4-160k_ade20k-512x512.py',
    'fpn-mobilenetv2':
    'configs/baselines/fpn_mobilenet-v2_4xb4-160k_ade20k-512x512.py',
    'segformer-m0':
    'configs/segformer/segformer_efficientvit-m0_8xb2-160k_ade20k-512x512.py',
    'segformer-m4':
    'configs/segformer/segformer_efficientvit-m4_8xb2-160k_ade20k-512x512.py',
    'segformer-b0':
    'mmseg::segformer/segformer_mit-b0_8xb2-160k_ade20k-512x512.py',
    'upernet-m0':
    'configs/upernet/upernet_efficientvit-m0_4xb4-160k_ade20k-512x512.py',
}
# Per family: the peer every model is compared with and the image sizes
# (H, W) timed by default: the quickstart size and the size of the
# published results (COCO 800x1333 for RetinaNet, 640x640 for RTMDet,
# ADE20K crops of 512x512).
FAMILIES = {
    'retinanet': dict(peer='retinanet-r18', sizes=[(192, 192), (800, 1333)]),
    'rtmdet': dict(peer='rtmdet-tiny', sizes=[(192, 192), (640, 640)]),
    'fpn': dict(peer='fpn-r18', sizes=[(256, 256), (512, 512)]),
    'segformer': dict(peer='segformer-b0', sizes=[(256, 256), (512, 512)]),
    # No stock UperNet is timed beside it.
    'upernet': dict(peer=None, sizes=[(256, 256), (512, 512)]),
}


def family(model: str) -> str:
    """The family of a whole model's name (its first word)."""
    return model.split('-')[0]


def parse_args(argv=None) -> argparse.Namespace:
    parser = benchmark_parser(__doc__, repeats=5, warmup=1)
    parser.add_argument(
        '--models',
        nargs='+',
        default=[*DETECTORS, *SEGMENTORS],
        choices=[*DETECTORS, *SEGMENTORS],
        help='whole models to time (default: all)')
    parser.add_argument(
        '--det-sizes',
        nargs='+',
        type=shape_type('HxW'),
        help='HxW images of all the detectors (default: per family, the '
        'quickstart size 192x192 and COCO: 800x1333 for RetinaNet, 640x640 '
        'for RTMDet)')
    parser.add_argument(
        '--seg-sizes',
        nargs='+',
        type=shape_type('HxW'),
        help='HxW images of all the segmentors (default: the quickstart '
        'size 256x256 and ADE20K 512x512)')
    parser.add_argument(
        '--graph-tail', action='store_true',
        help='segmentors: also time the deployed graph that draws the label '
        "map itself (backend '<backend>+graph-tail'), beside the default "
        "graph ending at the head's logits and the exact tail after it")
    parser.add_argument(
        '--scene-logits', action='store_true',
        help="segmentors: the exact tail draws from logits like a trained "
        "segmentor's on a synthetic scene, of the graph's output shape, "
        "instead of the random weights' noise (the graph still runs)")
    parser.add_argument(
        '--backends',
        nargs='*',
        default=list(BACKENDS),
        choices=BACKENDS,
        help='backends the deployed models are timed in, beside PyTorch '
        '(default: all; none: PyTorch only)')
    return parser.parse_args(argv)


def scene_of_size(size) -> np.ndarray:
    """The label map of a synthetic ADE20K-layout scene of ``size`` (H, W),
    for ``--scene-logits``."""
    scene = make_scene(np.random.default_rng(0), size[1], size[0])
    return scene_label_map(scene)


def bench_models(args: argparse.Namespace) -> list:
    """Time the chosen models family by family (one interleaved run per
    family and image size); add the ratios to eager and to the peer."""
    rows = []
    for name, facts in FAMILIES.items():
        configs = {model: os.path.join(REPO, config) if '::' not in config
                   else config
                   for model, config in {**DETECTORS, **SEGMENTORS}.items()
                   if model in args.models and family(model) == name}
        sizes = args.det_sizes if set(configs) <= set(DETECTORS) \
            else args.seg_sizes
        if configs:
            rows += whole_model.benchmark(
                configs, sizes or facts['sizes'], args.threads,
                args.warmup, args.repeats, args.backends, args.graph_tail,
                scene_of_size if args.scene_logits else None)
    timed = [row for row in rows if 'error' not in row]
    for row in timed:
        def same(name: str, backend: str) -> Optional[dict]:
            return next((r for r in timed if r['model'] == name and
                         r['backend'] == backend and
                         r['size'] == row['size']), None)

        row['img_per_s'] = 1e3 / row['median_ms']
        row['backbone_share'] = row['backbone_ms'] / row['median_ms']
        row['speedup_vs_eager'] = \
            same(row['model'], 'pytorch')['median_ms'] / row['median_ms']
        row['peer'] = FAMILIES[family(row['model'])]['peer']
        peer = same(row['peer'], row['backend'])
        row['speedup_vs_peer'] = None if peer is None else \
            peer['median_ms'] / row['median_ms']
    return rows


def print_model_rows(rows: list) -> None:
    for row in rows:
        size = 'x'.join(map(str, row['size']))
        if 'error' in row:
            print(f'{row["model"]:<24}{size:>9} {row["backend"]:<12}'
                  f'  not timed: {row["error"]}', flush=True)
            continue
        peer = row['speedup_vs_peer']
        peer = '' if peer is None else f'{peer:.2f}x'
        print(f'{row["model"]:<24}{size:>9} {row["backend"]:<12}'
              f'{row["median_ms"]:>9.1f} ({row["p10_ms"]:>8.1f}-'
              f'{row["p90_ms"]:>8.1f}){row["img_per_s"]:>8.2f}'
              f'{row["backbone_share"]:>9.0%}{1 - row["backbone_share"]:>8.0%}'
              f'{row["speedup_vs_eager"]:>8.2f}x{peer:>8}'
              f'{row["params"] / 1e6:>9.1f}{row["flops"] / 1e9:>8.1f}'
              f'{row["backbone_flops"] / row["flops"]:>9.0%}', flush=True)


def main(argv=None) -> int:
    args = parse_args(argv)
    use_threads(args.threads)
    env = environment(args.threads, osp.dirname(osp.abspath(__file__)),
                      packages=('onnxruntime', 'openvino'))
    print(describe(env, 'Whole models, CPU benchmark'))
    print(f'\nWhole models, batch 1, eval; median of {args.repeats} '
          f'interleaved runs after {args.warmup} warm-up(s); the whole '
          'model includes post-processing (NMS, label map); backbone = the '
          'backbone alone on the same input; GMACs = multiply-accumulates '
          'of the network, bb = the backbone\'s share; random weights'
          + ('; the label map drawn from logits like a trained '
             "segmentor's" if args.scene_logits else ''))
    print(f'{"model":<24}{"HxW":>9} {"backend":<12}{"ms (p10-p90)":>29}'
          f'{"img/s":>8}{"backbone":>9}{"neck+hd":>8}{"vs eager":>9}'
          f'{"vs peer":>8}{"params M":>9}{"GMACs":>8}{"bb MACs":>9}')
    rows = bench_models(args)
    print_model_rows(rows)
    finish(env, args.json, models=rows)
    return 0


if __name__ == '__main__':
    sys.exit(main())
