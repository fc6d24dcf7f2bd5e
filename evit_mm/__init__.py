"""evit_mm: EfficientViT (MSRA, CVPR 2023) for the OpenMMLab 2.0 toolboxes.

Importing the package registers its models in mmengine's root ``MODELS``
registry (``CheckedImageDataset`` in its ``DATASETS``, and where mmdet is
installed ``ReadableDetVisualizer`` in its ``VISUALIZERS``), so mmdet, mmseg
and mmpretrain configs build them by type name. Beyond its own classes it
changes two things in the process (docs/checkpoints.md, "What importing
evit_mm changes"): the plain types mmengine stores in a checkpoint join
torch's allow-list for ``weights_only`` loading
(:func:`evit_mm.checkpoint.register_safe_globals`), so the toolboxes' own
inference APIs and ``--resume`` read checkpoints the ``Runner`` wrote; and
mmengine's loaders of URLs and model-zoo names read with
``weights_only=True``
(:func:`evit_mm.checkpoint.register_safe_download_loaders`), so a
downloaded pickle cannot run code.

In a process that has imported mmdeploy (its ``tools/deploy.py`` loads a
config whose ``custom_imports`` brings evit_mm), it also registers
evit_mm's rewriters in mmdeploy's registry
(:func:`evit_mm.deploy.mmdeploy_plugin.register_rewriters`); mmdeploy
applies them only to its own exports.
"""
import sys

from . import datasets, hooks, models, visualization  # noqa: F401
from .checkpoint import register_safe_download_loaders, register_safe_globals
from .version import __version__  # noqa: F401

register_safe_globals()
register_safe_download_loaders()

if 'mmdeploy' in sys.modules:
    from .deploy.mmdeploy_plugin import register_rewriters
    register_rewriters()
