from .distill import DistillImageClassifier

__all__ = ['DistillImageClassifier']
