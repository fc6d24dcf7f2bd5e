"""Weights and output comparison for benchmarked models: non-trivial
normalization statistics, so that fused and unfused paths really differ,
and the relative error between two outputs."""
import torch
import torch.nn as nn


def relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    """Largest absolute difference relative to the largest ``expected``
    magnitude."""
    return ((actual - expected).abs().max() /
            expected.abs().max().clamp_min(1e-12)).item()


def randomize_statistics(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give BN layers and attention biases non-trivial values, so that the
    fused and unfused paths really differ and no branch is zero.

    Args:
        model (nn.Module): Changed in place and returned.
        seed (int): Seed of the values. Defaults to 0.
    """
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
