"""The EfficientViT backbone for dense prediction (window 7) on the CPU,
side by side with timm's as the reference: time and peak memory of eval
and of a training step (forward + backward), evit_mm with and without
``with_cp``.

Timings interleave the variants (one call of each in turn, the order
rotated every round) so that a busy machine slows all of them alike; the
median and the 10th-90th percentile spread are printed. The peak is the
resident memory one call adds, measured after all timings in a fresh
process per case that returns freed memory to the system at once. GFLOP/s
count 2 FLOPs per multiply-accumulate (a training step 3 forward passes)
and are printed beside this machine's fp32 matrix multiply rate, measured
in the same run.

Usage:
    python tools/analysis_tools/benchmark_backbone.py [--threads N] \\
        [--json out.json]
    python tools/analysis_tools/benchmark_backbone.py --archs m0 \\
        --shapes 1x512x512
"""
import argparse
import copy
import json
import os
import os.path as osp
import subprocess
import sys
from typing import Dict, Optional

import torch
import torch.nn as nn

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))

from evit_mm.analysis import count_complexity  # noqa: E402
from evit_mm.analysis.memory import peak_memory_mib  # noqa: E402
from evit_mm.analysis.numerics import randomize_statistics  # noqa: E402
from evit_mm.analysis.timing import (benchmark_parser,  # noqa: E402
                                     describe, environment, finish,
                                     interleaved, matmul_rates, shape_type,
                                     summary, use_threads)
from evit_mm.models import EfficientViT  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = benchmark_parser(__doc__, repeats=5)
    archs = sorted(EfficientViT.arch_zoo)
    parser.add_argument('--archs', nargs='+', default=['m4'], choices=archs)
    parser.add_argument(
        '--shapes',
        nargs='+',
        type=shape_type('BxHxW'),
        default=[(1, 800, 1333), (8, 512, 512)],
        help='BxHxW inputs (default: 1x800x1333 8x512x512)')
    parser.add_argument('--memory-probe', help=argparse.SUPPRESS)
    return parser.parse_args(argv)


class TimmBackbone(nn.Module):
    """timm's EfficientViT as a backbone (7x7 windows): its stage maps."""

    def __init__(self, arch: str) -> None:
        super().__init__()
        import timm
        self.model = timm.create_model(f'efficientvit_{arch}', img_size=448)

    def forward(self, x: torch.Tensor):
        return self.model.forward_intermediates(x, intermediates_only=True)


def train_step(model: nn.Module, x: torch.Tensor) -> None:
    """Forward, a loss touching every output, backward."""
    model.zero_grad(set_to_none=True)
    loss = sum(out.float().mean() for out in model(x))
    loss.backward()


def dense_models(arch: str) -> Dict[str, nn.Module]:
    reference = randomize_statistics(TimmBackbone(arch))
    ours = EfficientViT(arch)
    with_cp = EfficientViT(arch, with_cp=True)
    weights = randomize_statistics(ours).state_dict()
    with_cp.load_state_dict(weights)
    deploy = copy.deepcopy(ours).eval()
    deploy.switch_to_deploy()
    return dict(reference=reference, ours=ours, with_cp=with_cp,
                deploy=deploy)


def dense_cases(models: Dict[str, nn.Module], x: torch.Tensor) -> list:
    """(mode, variant, function) of the benchmark."""
    return [
        ('eval', 'timm', lambda: models['reference'](x)),
        ('eval', 'evit_mm', lambda: models['ours'](x)),
        ('eval', 'evit_mm deploy', lambda: models['deploy'](x)),
        ('train', 'timm', lambda: train_step(models['reference'], x)),
        ('train', 'evit_mm', lambda: train_step(models['ours'], x)),
        ('train', 'evit_mm with_cp', lambda: train_step(models['with_cp'], x)),
    ]


def run_mode(models: Dict[str, nn.Module], mode: str) -> type:
    """Put the models in ``mode`` and return the matching grad context."""
    for model in models.values():
        model.train(mode == 'train' and not getattr(model, 'deploy', False))
    return torch.inference_mode if mode == 'eval' else torch.enable_grad


def bench_dense(args: argparse.Namespace, mm_gflops: float) -> list:
    """Time every case, then measure its peak memory (one process per
    case); print the rows at the end."""
    rows = []
    for arch in args.archs:
        models = dense_models(arch)
        for batch, height, width in args.shapes:
            x = torch.randn(batch, 3, height, width)
            macs = count_complexity(models['deploy'],
                                    (x[:1], ))['flops'] * batch
            cases = dense_cases(models, x)
            for mode in ('eval', 'train'):
                fns = {name: fn for m, name, fn in cases if m == mode}
                with run_mode(models, mode)():
                    times = interleaved(fns, 1, args.repeats)
                for name, samples in times.items():
                    row = dict(arch=arch, shape=[batch, 3, height, width],
                               mode=mode, variant=name, **summary(samples))
                    flops = 2 * macs * (3 if mode == 'train' else 1)
                    row['gflops'] = flops / (row['median_ms'] / 1e3) / 1e9
                    row['pct_of_matmul'] = 100 * row['gflops'] / mm_gflops
                    rows.append(row)
    for row in rows:
        row['peak_mib'] = probe_memory(row, args.threads)
        print_dense_row(row)
    return rows


def probe_memory(row: dict, threads: int) -> Optional[float]:
    """Peak memory of one case, in a fresh process whose glibc returns
    every freed block of 64 KiB or more to the system at once, so that the
    resident size follows the live tensors (in a process that has run for a
    while, freed heap memory stays resident and the peak depends on its
    fragmentation)."""
    batch, _, height, width = row['shape']
    command = [
        sys.executable,
        os.path.abspath(__file__), '--threads',
        str(threads), '--memory-probe',
        f'{row["arch"]},{batch}x{height}x{width},{row["mode"]},'
        f'{row["variant"]}'
    ]
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_='65536')
    done = subprocess.run(command, capture_output=True, text=True, env=env,
                          check=False)
    if done.returncode:
        raise RuntimeError(f'memory probe {command} failed:\n'
                           f'{done.stderr[-2000:]}')
    return json.loads(done.stdout.strip().splitlines()[-1])['peak_mib']


def memory_probe(spec: str) -> dict:
    """In the probe process: build the case ``arch,BxHxW,mode,variant``,
    run it once, then measure one more call."""
    arch, shape, mode, variant = spec.split(',')
    batch, height, width = (int(v) for v in shape.split('x'))
    models = dense_models(arch)
    x = torch.randn(batch, 3, height, width)
    step = next(fn for m, name, fn in dense_cases(models, x)
                if m == mode and name == variant)
    with run_mode(models, mode)():
        step()
        return dict(peak_mib=peak_memory_mib(step))


def print_dense_row(row: dict) -> None:
    shape = 'x'.join(map(str, row['shape']))
    memory = 'n/a' if row['peak_mib'] is None else f'{row["peak_mib"]:.0f}'
    print(f'{row["arch"]:<4} {shape:<13} {row["mode"]:<6}'
          f'{row["variant"]:<17}{row["median_ms"]:>9.1f} '
          f'({row["p10_ms"]:>8.1f}-{row["p90_ms"]:>8.1f}){memory:>10}'
          f'{row["gflops"]:>9.1f}{row["pct_of_matmul"]:>6.0f}%', flush=True)


def main(argv=None) -> int:
    args = parse_args(argv)
    use_threads(args.threads)
    if args.memory_probe:
        print(json.dumps(memory_probe(args.memory_probe)))
        return 0
    env = environment(args.threads, osp.dirname(osp.abspath(__file__)))
    rates = matmul_rates()
    print(describe(env, 'EfficientViT backbone CPU benchmark', rates))
    print(f'\nDense backbone (window 7); median of {args.repeats} '
          'interleaved runs; peak = resident memory added by one call '
          '(train: forward + backward), measured in a fresh process that '
          'returns freed memory to the system at once')
    print(f'{"arch":<4} {"input":<13} {"mode":<6}{"variant":<17}'
          f'{"ms (p10-p90)":>29}{"peak MiB":>10}{"GFLOP/s":>9}{"%mm":>7}')
    rows = bench_dense(args, max(rates.values()))
    finish(env, args.json, matmul_rates=rates, backbone=rows)
    return 0


if __name__ == '__main__':
    sys.exit(main())
