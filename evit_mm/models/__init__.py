import importlib.util
import warnings

from .backbones import EfficientViT  # noqa: F401
from .classifiers import EfficientViTClassifier  # noqa: F401
from .necks import EfficientViTFPN  # noqa: F401

# The mmpretrain parts register only where mmpretrain is installed.
if importlib.util.find_spec('mmpretrain') is not None:
    try:
        from .classifiers.distill import DistillImageClassifier  # noqa: F401
        from .heads import EfficientViTClsHead  # noqa: F401
    except ImportError as err:
        warnings.warn(
            f'mmpretrain is installed but cannot be imported ({err}); '
            'EfficientViTClsHead and DistillImageClassifier are not '
            'registered.')
