"""mmengine hooks, registered in its root ``HOOKS`` registry by
``import evit_mm``: :class:`AdaptiveGradClipHook` and
:class:`ImageCheckHook` (the run-time side of the dataset image checks);
the checkpoint hooks of the tools are in :mod:`evit_mm.engine.reliability`.
"""
from .adaptive_grad_clip import AdaptiveGradClipHook, clip_grad_adaptively
from .image_check import ImageCheckHook

__all__ = ['AdaptiveGradClipHook', 'ImageCheckHook', 'clip_grad_adaptively']
