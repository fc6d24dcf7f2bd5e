"""Time, alone, the tail every deployed mmseg graph ends in: the class
logits resized (bilinear, half-pixel) to the input size, then the argmax
over the classes, in ONNX Runtime and OpenVINO.

Example (SegFormer-M0's stride-8 and SegFormer-B0's stride-4 logits of
ADE20K's 150 classes at 512x512)::

    python tools/analysis_tools/time_label_map_tail.py --size 512 \\
        --logit-sizes 64 128
"""
import argparse
import statistics
import time
from typing import Callable, List

import numpy as np


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


def median_ms(run: Callable, repeat: int) -> float:
    """Median time of ``run()`` over ``repeat`` calls after one warm-up."""
    run()
    times: List[float] = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


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
    import onnxruntime
    import openvino
    args = parse_args()
    core = openvino.Core()
    for logit_size in args.logit_sizes:
        graph = tail_graph(args.classes, logit_size, args.size)
        logits = np.random.default_rng(0).standard_normal(
            (1, args.classes, logit_size, logit_size), dtype=np.float32)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = args.threads
        options.inter_op_num_threads = 1
        session = onnxruntime.InferenceSession(
            graph, options, providers=['CPUExecutionProvider'])
        compiled = core.compile_model(
            core.read_model(graph), 'CPU',
            {'INFERENCE_NUM_THREADS': args.threads})
        ort_ms = median_ms(lambda: session.run(None, {'logits': logits}),
                           args.repeat)
        openvino_ms = median_ms(lambda: compiled([logits]), args.repeat)
        print(f'{args.classes} classes {logit_size}x{logit_size} -> '
              f'{args.size}x{args.size}: onnxruntime {ort_ms:.1f} ms, '
              f'openvino {openvino_ms:.1f} ms')


if __name__ == '__main__':
    main()
