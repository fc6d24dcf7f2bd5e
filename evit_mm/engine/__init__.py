"""Helpers of the training and test tools: runtime fixes for mmengine and
the command-line options, the same for mmdet, mmseg and mmpretrain."""
from .options import apply_test_options, apply_train_options, config_scope
from .runtime import allow_mmengine_checkpoints, setup_distributed

__all__ = [
    'allow_mmengine_checkpoints', 'apply_test_options', 'apply_train_options',
    'config_scope', 'setup_distributed'
]
