"""Helpers of the training and test tools: runtime fixes for mmengine and
the command-line options, the same for mmdet, mmseg and mmpretrain."""
from .cli import add_launch_arguments, build_runner, parse_tool_args
from .options import apply_test_options, apply_train_options, config_scope
from .reliability import (AtomicCheckpointHook, CheckpointFitHook,
                          check_checkpoint_fits, harden_runtime)
from .runtime import leave_distributed, setup_distributed

__all__ = [
    'AtomicCheckpointHook', 'CheckpointFitHook', 'add_launch_arguments',
    'apply_test_options', 'apply_train_options', 'build_runner',
    'check_checkpoint_fits', 'config_scope', 'harden_runtime',
    'leave_distributed', 'parse_tool_args', 'setup_distributed'
]
