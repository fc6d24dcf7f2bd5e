from .optim_wrapper import AGCOptimWrapper

__all__ = ['AGCOptimWrapper']
