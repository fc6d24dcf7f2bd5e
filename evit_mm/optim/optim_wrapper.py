"""Optimizer wrapper with adaptive gradient clipping."""
from typing import List

import torch
from mmengine.optim import OptimWrapper
from mmengine.registry import OPTIM_WRAPPERS
from torch.optim import Optimizer


def unit_norms(tensor: torch.Tensor) -> torch.Tensor:
    """L2 norms of the units of a weight: one per output channel (norm over
    all other dims, kept for broadcasting); a 0-/1-D tensor is one unit."""
    if tensor.dim() <= 1:
        return tensor.norm()
    norms = tensor.flatten(1).norm(dim=1)
    return norms.view(-1, *([1] * (tensor.dim() - 1)))


@OPTIM_WRAPPERS.register_module()
class AGCOptimWrapper(OptimWrapper):
    """:class:`OptimWrapper` with adaptive gradient clipping (AGC, Brock et
    al., "High-Performance Large-Scale Image Recognition Without
    Normalization", 2021), the clipping of the official EfficientViT training
    (timm's ``--clip-mode agc --clip-grad 0.02``).

    Before each optimizer step, the gradient of every unit (an output
    channel of a weight, or a whole 1-D tensor) whose norm exceeds
    ``clip_factor * max(unit weight norm, eps)`` is scaled down to that norm.

    Args:
        optimizer (Optimizer): The optimizer.
        clip_factor (float): Largest allowed ratio of gradient to weight norm.
            Defaults to 0.02.
        eps (float): Weight norms below it count as ``eps``, so that
            zero-initialised weights can grow. Defaults to 1e-3.
        **kwargs: ``accumulative_counts`` of :class:`OptimWrapper`.
    """

    def __init__(self,
                 optimizer: Optimizer,
                 clip_factor: float = 0.02,
                 eps: float = 1e-3,
                 **kwargs) -> None:
        if kwargs.get('clip_grad') is not None:
            raise ValueError(
                'AGCOptimWrapper clips gradients itself; remove clip_grad='
                f'{kwargs["clip_grad"]!r} (or use OptimWrapper for norm or '
                'value clipping).')
        for name, value in (('clip_factor', clip_factor), ('eps', eps)):
            if not value > 0:
                raise ValueError(f'{name}={value!r} must be positive.')
        super().__init__(optimizer, **kwargs)
        self.clip_factor = clip_factor
        self.eps = eps

    def _params_with_grad(self) -> List[torch.Tensor]:
        return [
            param for group in self.optimizer.param_groups
            for param in group['params'] if param.grad is not None
        ]

    @torch.no_grad()
    def clip_adaptively(self) -> None:
        """Apply AGC to the current gradients in place."""
        for param in self._params_with_grad():
            limit = unit_norms(param).clamp(min=self.eps) * self.clip_factor
            norm = unit_norms(param.grad).clamp(min=1e-6)
            param.grad.mul_((limit / norm).clamp(max=1.))

    def step(self, **kwargs) -> None:
        self.clip_adaptively()
        super().step(**kwargs)
