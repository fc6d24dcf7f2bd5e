from .efficientvit_head import EfficientViTClsHead

__all__ = ['EfficientViTClsHead']
