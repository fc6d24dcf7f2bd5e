from .backbones import EfficientViT  # noqa: F401
