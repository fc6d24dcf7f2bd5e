"""evit_mm: EfficientViT (MSRA, CVPR 2023) for the OpenMMLab 2.0 toolboxes.

Importing the package registers its models in mmengine's root ``MODELS``
registry (and ``CheckedImageDataset`` in its ``DATASETS``), so mmdet, mmseg
and mmpretrain configs build them by type name.
"""
from . import datasets, hooks, models  # noqa: F401
from .version import __version__  # noqa: F401
