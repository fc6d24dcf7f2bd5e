"""Checkpoint safety for the tools' training and testing runs:
:func:`harden_runtime` turns on evit_mm's checkpoint hooks
(:mod:`evit_mm.hooks`) for a config.

* :class:`~evit_mm.hooks.CheckpointFitHook` reads the checkpoint a run
  loads safely before mmengine does (a code-carrying, truncated or missing
  file is an error naming it), and checks the loaded checkpoint against
  the model before its weights are copied: another model entirely, or
  another EfficientViT arch (named), is an error naming the file instead
  of a half-loaded model.
* :class:`~evit_mm.hooks.AtomicCheckpointHook` writes each checkpoint and
  the ``last_checkpoint`` pointer aside, flushes them to disk and renames
  them into place, and removes checkpoints beyond ``max_keep_ckpts`` only
  after that: killing the run at any moment leaves the latest checkpoint
  and the pointer readable.
"""
from mmengine.config import Config
from mmengine.hooks import CheckpointHook


def harden_runtime(cfg: Config, strict_load: bool = False) -> Config:
    """Fit checks and atomic checkpoint writes for a run of ``cfg``.

    Args:
        cfg (Config): The run's config; changed in place: a
            ``CheckpointFitHook`` is added to ``custom_hooks``, and a plain
            ``CheckpointHook`` becomes an ``AtomicCheckpointHook``.
        strict_load (bool): The loaded checkpoint must fit the whole model
            exactly (``tools/test.py``).

    Returns:
        Config: ``cfg``.
    """
    hooks = [h for h in cfg.get('custom_hooks', [])
             if h.get('type') != 'CheckpointFitHook']
    cfg.custom_hooks = hooks + [dict(type='CheckpointFitHook',
                                     strict=strict_load)]
    checkpoint_hook = cfg.get('default_hooks', {}).get('checkpoint')
    if checkpoint_hook is not None and checkpoint_hook.get('type') in (
            'CheckpointHook', CheckpointHook):
        checkpoint_hook.type = 'AtomicCheckpointHook'
    return cfg
