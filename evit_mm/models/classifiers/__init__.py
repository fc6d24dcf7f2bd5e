from .efficientvit_classifier import EfficientViTClassifier

__all__ = ['EfficientViTClassifier']
