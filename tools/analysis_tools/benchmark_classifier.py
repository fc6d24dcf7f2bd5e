"""Classifier throughput on the CPU (224x224, eval), side by side with
timm's ``efficientvit_mX`` as the reference, in one run.

For each arch and batch size: timm, evit_mm, evit_mm deploy (Conv-BN fused)
and evit_mm through onnxruntime (deploy graph), all with the same weights
(timm's, converted); the largest relative output difference to timm is
printed beside. Timings interleave the variants (one call of each in turn,
the order rotated every round) so that a busy machine slows all of them
alike; the median and the 10th-90th percentile spread are printed. GFLOP/s
count 2 FLOPs per multiply-accumulate and are printed beside this machine's
fp32 matrix multiply rate, measured in the same run.

Usage:
    python tools/analysis_tools/benchmark_classifier.py [--threads N] \\
        [--json out.json]
    python tools/analysis_tools/benchmark_classifier.py --archs m0 m4 \\
        --batch-sizes 1
"""
import argparse
import copy
import os.path as osp
import statistics
import sys
from typing import Dict

import torch
import torch.nn as nn

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))

from evit_mm.analysis import count_complexity  # noqa: E402
from evit_mm.analysis.numerics import (  # noqa: E402
    randomize_statistics, relative_error)
from evit_mm.analysis.timing import (benchmark_parser,  # noqa: E402
                                     describe, environment, finish,
                                     int_at_least, interleaved, matmul_rates,
                                     ort_timer, summary, use_threads)
from evit_mm.deploy import export_onnx  # noqa: E402
from evit_mm.models import EfficientViT, EfficientViTClassifier  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = benchmark_parser(__doc__, repeats=40, warmup=5)
    archs = sorted(EfficientViT.arch_zoo)
    parser.add_argument('--archs', nargs='+', default=archs, choices=archs)
    parser.add_argument('--batch-sizes', type=int_at_least(1), nargs='+',
                        default=[1, 16])
    parser.add_argument(
        '--no-ort', action='store_true', help='skip ONNX Runtime')
    return parser.parse_args(argv)


def classifier_models(arch: str) -> Dict[str, nn.Module]:
    """timm's classifier and evit_mm's with the same (timm's) weights."""
    import timm
    reference = randomize_statistics(
        timm.create_model(f'efficientvit_{arch}')).eval()
    ours = EfficientViTClassifier(arch)
    ours.load_state_dict(reference.state_dict())
    ours.eval()
    deploy = copy.deepcopy(ours)
    deploy.switch_to_deploy()
    return {'timm': reference, 'evit_mm': ours, 'evit_mm deploy': deploy}


def bench_classifiers(args: argparse.Namespace, mm_gflops: float) -> list:
    rows = []
    for arch in args.archs:
        models = classifier_models(arch)
        macs = count_complexity(models['evit_mm deploy'],
                                (torch.zeros(1, 3, 224, 224), ))['flops']
        for batch in args.batch_sizes:
            x = torch.randn(batch, 3, 224, 224)
            fns = {name: (lambda m=model: m(x))
                   for name, model in models.items()}
            if not args.no_ort:
                fns['evit_mm onnxruntime'] = ort_timer(
                    export_onnx(models['evit_mm deploy'], x, ['logits'],
                                dynamic=False), {'input': x}, args.threads)
            with torch.inference_mode():
                outputs = {name: torch.as_tensor(
                    fn()[0] if name.endswith('onnxruntime') else fn())
                    for name, fn in fns.items()}
                times = interleaved(fns, args.warmup, args.repeats)
            base = statistics.median(times['timm'])
            for name, samples in times.items():
                row = dict(arch=arch, batch=batch, variant=name,
                           **summary(samples))
                seconds = row['median_ms'] / 1e3
                row.update(
                    img_per_s=batch / seconds,
                    gflops=2 * macs * batch / seconds / 1e9,
                    speedup_vs_timm=base / seconds,
                    rel_err_vs_timm=relative_error(outputs[name],
                                                   outputs['timm']))
                row['pct_of_matmul'] = 100 * row['gflops'] / mm_gflops
                rows.append(row)
                print_classifier_row(row)
    return rows


def print_classifier_row(row: dict) -> None:
    print(f'{row["arch"]:<4} {row["batch"]:>3}  {row["variant"]:<20}'
          f'{row["median_ms"]:>9.2f} ({row["p10_ms"]:>7.2f}-'
          f'{row["p90_ms"]:>7.2f}){row["img_per_s"]:>9.1f}'
          f'{row["gflops"]:>9.1f}{row["pct_of_matmul"]:>6.0f}%'
          f'{row["speedup_vs_timm"]:>8.2f}x{row["rel_err_vs_timm"]:>10.1e}',
          flush=True)


def main(argv=None) -> int:
    args = parse_args(argv)
    use_threads(args.threads)
    env = environment(args.threads, osp.dirname(osp.abspath(__file__)))
    rates = matmul_rates()
    print(describe(env, 'EfficientViT classifier CPU benchmark', rates))
    print(f'\nClassifier, 224x224, eval; median of {args.repeats} '
          f'interleaved runs after {args.warmup} warm-ups')
    print(f'{"arch":<4} {"bs":>3}  {"variant":<20}{"ms (p10-p90)":>27}'
          f'{"img/s":>9}{"GFLOP/s":>9}{"%mm":>7}{"vs timm":>9}'
          f'{"rel err":>10}')
    rows = bench_classifiers(args, max(rates.values()))
    finish(env, args.json, matmul_rates=rates, classifier=rows)
    return 0


if __name__ == '__main__':
    sys.exit(main())
