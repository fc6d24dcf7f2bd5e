"""Helpers of the training and test tools: runtime fixes for mmengine and
the command-line options, the same for mmdet, mmseg and mmpretrain.
Importing it ignores setuptools' pkg_resources deprecation warning, which
mmengine's config loader raises once per toolbox base (see ``quiet``)."""
from .cli import add_launch_arguments, build_runner, parse_tool_args
from .options import apply_test_options, apply_train_options, config_scope
from .reliability import harden_runtime
from .quiet import drop_logged, ignore_pkg_resources_deprecation
from .run_log import ConciseLogRunner
from .runtime import leave_distributed, setup_distributed

ignore_pkg_resources_deprecation()

__all__ = [
    'ConciseLogRunner', 'add_launch_arguments', 'apply_test_options',
    'apply_train_options', 'build_runner', 'config_scope', 'drop_logged',
    'harden_runtime', 'leave_distributed', 'parse_tool_args',
    'setup_distributed'
]
