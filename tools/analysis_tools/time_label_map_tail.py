"""Time, alone, the tail every deployed mmseg graph ends in: the class
logits resized (bilinear, half-pixel) to the input size, then the argmax
over the classes, in ONNX Runtime and OpenVINO: median (p10-p90) of
interleaved runs, as benchmark.py times whole models.

Example (SegFormer-M0's stride-8 and SegFormer-B0's stride-4 logits of
ADE20K's 150 classes at 512x512)::

    python tools/analysis_tools/time_label_map_tail.py --size 512 \\
        --logit-sizes 64 128
"""
import argparse
import os.path as osp
import sys
import tempfile

import numpy as np

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))

from evit_mm.analysis.timing import (deployed_timer, interleaved,  # noqa: E402
                                     summary)
from evit_mm.deploy.work_dir import BACKENDS  # noqa: E402


def tail_graph(classes: int, logit_size: int, size: int) -> bytes:
    """An ONNX graph: ``(1, classes, logit_size, logit_size)`` logits in,
    the ``(1, 1, size, size)`` label map out."""
    import onnx.helper as helper
    from onnx import TensorProto
    nodes = [
        helper.make_node('Resize', ['logits', 'roi', 'scales', 'sizes'],
                         ['resized'], mode='linear',
                         coordinate_transformation_mode='half_pixel'),
        helper.make_node('ArgMax', ['resized'], ['labels'], axis=1,
                         keepdims=1)
    ]
    graph = helper.make_graph(
        nodes, 'label_map_tail', [
            helper.make_tensor_value_info(
                'logits', TensorProto.FLOAT,
                [1, classes, logit_size, logit_size])
        ], [helper.make_tensor_value_info('labels', TensorProto.INT64, None)],
        initializer=[
            helper.make_tensor('roi', TensorProto.FLOAT, [0], []),
            helper.make_tensor('scales', TensorProto.FLOAT, [0], []),
            helper.make_tensor('sizes', TensorProto.INT64, [4],
                               [1, classes, size, size])
        ])
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid('', 13)])
    model.ir_version = 8
    return model.SerializeToString()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--size', type=int, default=512,
                        help='side of the input, and of the label map')
    parser.add_argument('--logit-sizes', type=int, nargs='+',
                        default=[64, 128], help='sides of the logits')
    parser.add_argument('--classes', type=int, default=150)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--repeat', type=int, default=10)
    args = parser.parse_args()
    for name in ('size', 'classes', 'threads', 'repeat'):
        if getattr(args, name) < 1:
            parser.error(f'--{name} must be >= 1, got {getattr(args, name)}')
    if min(args.logit_sizes) < 1:
        parser.error(f'--logit-sizes must be >= 1, got {args.logit_sizes}')
    return args


def main() -> None:
    args = parse_args()
    for logit_size in args.logit_sizes:
        logits = np.random.default_rng(0).standard_normal(
            (1, args.classes, logit_size, logit_size), dtype=np.float32)
        with tempfile.TemporaryDirectory() as folder:
            graph = osp.join(folder, 'tail.onnx')
            with open(graph, 'wb') as file:
                file.write(tail_graph(args.classes, logit_size, args.size))
            times = interleaved(
                {backend: deployed_timer(backend, graph, {'logits': logits},
                                         args.threads)
                 for backend in BACKENDS},
                warmup=1, repeats=args.repeat)
        timings = ', '.join(
            '{} {median_ms:.1f} ms ({p10_ms:.1f}-{p90_ms:.1f})'.format(
                backend, **summary(times[backend])) for backend in BACKENDS)
        print(f'{args.classes} classes {logit_size}x{logit_size} -> '
              f'{args.size}x{args.size}: {timings}')


if __name__ == '__main__':
    main()
