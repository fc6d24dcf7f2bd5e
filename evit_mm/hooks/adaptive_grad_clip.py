"""Adaptive gradient clipping as an mmengine hook."""
import torch
from mmengine.hooks import Hook
from mmengine.optim import OptimWrapperDict
from mmengine.registry import HOOKS
from torch.optim import Optimizer


def unit_norms(tensor: torch.Tensor) -> torch.Tensor:
    """L2 norms of the units of a weight: one per output channel (norm over
    all other dims, kept for broadcasting); a 0-/1-D tensor is one unit."""
    if tensor.dim() <= 1:
        return tensor.norm()
    norms = tensor.flatten(1).norm(dim=1)
    return norms.view(-1, *([1] * (tensor.dim() - 1)))


@torch.no_grad()
def clip_grad_adaptively(optimizer: Optimizer,
                         clip_factor: float,
                         eps: float = 1e-3) -> None:
    """Scale down, in place, the gradient of every unit (an output channel of
    a weight, or a whole 1-D tensor) whose norm exceeds ``clip_factor *
    max(unit weight norm, eps)`` to that norm, for all parameters of
    ``optimizer``."""
    for group in optimizer.param_groups:
        for param in group['params']:
            if param.grad is None:
                continue
            limit = unit_norms(param).clamp(min=eps) * clip_factor
            norm = unit_norms(param.grad).clamp(min=1e-6)
            param.grad.mul_((limit / norm).clamp(max=1.))


@HOOKS.register_module()
class AdaptiveGradClipHook(Hook):
    """Adaptive gradient clipping (AGC; Brock et al., "High-Performance
    Large-Scale Image Recognition Without Normalization", 2021), the
    clipping of the official EfficientViT training (timm's ``--clip-mode agc
    --clip-grad 0.02``).

    It runs right before every optimizer step, on the final gradients: after
    gradient accumulation and, with ``AmpOptimWrapper``, after the loss
    scale is taken out. So it combines with any optimizer wrapper.

    Args:
        clip_factor (float): Largest allowed ratio of a unit's gradient norm
            to its weight norm. Defaults to 0.02.
        eps (float): Weight norms below it count as ``eps``, so that
            zero-initialised weights can grow. Defaults to 1e-3.
    """

    priority = 'VERY_HIGH'

    def __init__(self, clip_factor: float = 0.02, eps: float = 1e-3) -> None:
        for name, value in (('clip_factor', clip_factor), ('eps', eps)):
            if not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f'{name}={value!r} must be a positive '
                                 'number.')
        self.clip_factor = clip_factor
        self.eps = eps
        self._handles = []

    def _clip(self, optimizer: Optimizer, args, kwargs) -> None:
        clip_grad_adaptively(optimizer, self.clip_factor, self.eps)

    def before_train(self, runner) -> None:
        """Attach the clipping to the step of every optimizer."""
        wrapper = runner.optim_wrapper
        wrappers = wrapper.values() if isinstance(
            wrapper, OptimWrapperDict) else [wrapper]
        self._handles = [
            w.optimizer.register_step_pre_hook(self._clip) for w in wrappers
        ]

    def after_train(self, runner) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
