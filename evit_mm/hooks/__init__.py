"""mmengine hooks, registered in its root ``HOOKS`` registry by
``import evit_mm``: :class:`AdaptiveGradClipHook`, :class:`ImageCheckHook`
(the run-time side of the dataset image checks), and the checkpoint hooks
the tools turn on (:func:`evit_mm.engine.harden_runtime`):
:class:`AtomicCheckpointHook` (checkpoint writes that survive a kill) and
:class:`CheckpointFitHook` (the loaded checkpoint read safely and checked
against the model, :func:`check_checkpoint_fits`).
"""
from .adaptive_grad_clip import AdaptiveGradClipHook, clip_grad_adaptively
from .atomic_checkpoint import AtomicCheckpointHook
from .checkpoint_fit import CheckpointFitHook, check_checkpoint_fits
from .image_check import ImageCheckHook

__all__ = [
    'AdaptiveGradClipHook', 'AtomicCheckpointHook', 'CheckpointFitHook',
    'ImageCheckHook', 'check_checkpoint_fits', 'clip_grad_adaptively'
]
