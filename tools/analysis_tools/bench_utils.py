"""Timing helpers shared by the benchmark tools; they need only torch, so
that they also serve older evit_mm revisions (compare_revisions.py)."""
import statistics
import time
from typing import Callable, Dict, List

import torch
import torch.nn as nn


def interleaved(fns: Dict[str, Callable[[], object]], warmup: int,
                repeats: int) -> Dict[str, List[float]]:
    """Seconds per call of each function, calling them in turn (the order
    rotated each round)."""
    names = list(fns)
    times = {name: [] for name in names}
    for _ in range(warmup):
        for name in names:
            fns[name]()
    for round_ in range(repeats):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            start = time.perf_counter()
            fns[name]()
            times[name].append(time.perf_counter() - start)
    return times


def summary(times: List[float]) -> dict:
    ordered = sorted(times)

    def percentile(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return dict(
        median_ms=statistics.median(ordered) * 1e3,
        p10_ms=percentile(.1) * 1e3,
        p90_ms=percentile(.9) * 1e3,
        runs=len(ordered))


def relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    return ((actual - expected).abs().max() /
            expected.abs().max().clamp_min(1e-12)).item()


def randomize_statistics(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give BN layers and attention biases non-trivial values, so that the
    fused and unfused paths really differ and no branch is zero."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if not tensor.is_floating_point():
                continue
            shape = tensor.shape
            if name.endswith('running_var'):
                tensor.copy_(torch.rand(shape, generator=generator) + .5)
            elif name.endswith(
                    ('running_mean', 'bn.bias', 'attention_biases')):
                tensor.copy_(torch.randn(shape, generator=generator) * .1)
            elif name.endswith('bn.weight'):
                tensor.copy_(1 + torch.randn(shape, generator=generator) * .1)
    return model
