from .backbones import EfficientViT  # noqa: F401
from .necks import EfficientViTFPN  # noqa: F401
