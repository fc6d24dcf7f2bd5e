"""evit_mm: EfficientViT (MSRA, CVPR 2023) for the OpenMMLab 2.0 toolboxes.

Importing the package registers its models in mmengine's root ``MODELS``
registry (``CheckedImageDataset`` in its ``DATASETS``, and where mmdet is
installed ``ReadableDetVisualizer`` in its ``VISUALIZERS``), so mmdet, mmseg
and mmpretrain configs build them by type name; and it makes checkpoint
reads safe and able to read the toolboxes' checkpoints on torch >= 2.6
(:func:`evit_mm.checkpoint.install_safe_loading`), so the toolboxes' own
inference APIs load them too.

In a process that has imported mmdeploy (its ``tools/deploy.py`` loads a
config whose ``custom_imports`` brings evit_mm), it also registers
evit_mm's rewriters in mmdeploy
(:func:`evit_mm.deploy.mmdeploy_plugin.register_rewriters`); mmdeploy
applies them only to its own exports.
"""
import sys

from . import datasets, hooks, models, visualization  # noqa: F401
from .checkpoint import install_safe_loading
from .version import __version__  # noqa: F401

install_safe_loading()

if 'mmdeploy' in sys.modules:
    from .deploy.mmdeploy_plugin import register_rewriters
    register_rewriters()
