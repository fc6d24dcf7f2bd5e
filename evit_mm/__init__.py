"""evit_mm: EfficientViT (MSRA, CVPR 2023) for the OpenMMLab 2.0 toolboxes.

Importing the package registers its models in mmengine's root ``MODELS``
registry (``CheckedImageDataset`` in its ``DATASETS``, and where mmdet is
installed ``ReadableDetVisualizer`` in its ``VISUALIZERS``), so mmdet, mmseg
and mmpretrain configs build them by type name.
"""
from . import datasets, hooks, models, visualization  # noqa: F401
from .version import __version__  # noqa: F401
