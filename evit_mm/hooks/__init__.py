from .adaptive_grad_clip import AdaptiveGradClipHook, clip_grad_adaptively

__all__ = ['AdaptiveGradClipHook', 'clip_grad_adaptively']
