"""Checkpoint safety for training and testing runs.

* :class:`CheckpointFitHook` reads the checkpoint a run loads safely
  before mmengine does (a code-carrying, truncated or missing file is an
  error naming it), and checks the loaded checkpoint against the model
  before its weights are copied: another model entirely, or another
  EfficientViT arch (named), is an error naming the file instead of a
  half-loaded model.
* :class:`AtomicCheckpointHook` writes each checkpoint and the
  ``last_checkpoint`` pointer aside, flushes them to disk and renames them
  into place, and removes checkpoints beyond ``max_keep_ckpts`` only after
  that: killing the run at any moment leaves the latest checkpoint and the
  pointer readable.

:func:`harden_runtime` turns both on for a config; the tools call it.
"""
import contextlib
import os
import os.path as osp
from typing import List, Optional

from mmengine.config import Config
from mmengine.dist import is_main_process
from mmengine.fileio import LocalBackend
from mmengine.hooks import CheckpointHook, Hook
from mmengine.model import BaseTTAModel, is_model_wrapper
from mmengine.registry import HOOKS
from mmengine.runner import find_latest_checkpoint

from ..checkpoint import (LAYOUT_NAMES, CheckpointError, check_fit,
                          convert_to_evit, detect_layout, extract_state_dict,
                          read_checkpoint)
from .quiet import FILE_CLIENT_DEPRECATION, drop_logged


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def commit_file(tmp_path: str, path: str) -> None:
    """Flush ``tmp_path`` to disk and rename it to ``path`` in one step: a
    reader sees the old file or the complete new one, never a part."""
    with open(tmp_path, 'rb+') as f:
        os.fsync(f.fileno())
    os.replace(tmp_path, path)
    _fsync_dir(osp.dirname(osp.abspath(path)))


def atomic_write_text(path: str, text: str) -> None:
    """Write ``text`` to ``path`` atomically (aside, fsync, rename)."""
    tmp_path = f'{path}.tmp-{os.getpid()}'
    with open(tmp_path, 'w') as f:
        f.write(text)
    commit_file(tmp_path, path)


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """:class:`~mmengine.hooks.CheckpointHook` whose checkpoints survive a
    kill at any moment.

    The checkpoint is saved as a hidden temporary file in the same folder,
    flushed and renamed; then the ``last_checkpoint`` pointer is replaced
    the same way; only then are checkpoints beyond ``max_keep_ckpts``
    removed (mmengine removes them before saving, so a kill in between
    leaves the pointer naming a deleted file). Takes the same arguments as
    ``CheckpointHook``. Checkpoints to remote storage (``backend_args``) are
    saved as mmengine does; object stores replace objects whole.
    """

    def _unused_file_client_note_dropped(self):
        """mmengine builds a FileClient before training and at each save
        even when none is configured, and says it is deprecated."""
        if self.file_client_args is not None:
            return contextlib.nullcontext()
        return drop_logged(*FILE_CLIENT_DEPRECATION)

    def before_train(self, runner) -> None:
        with self._unused_file_client_note_dropped():
            super().before_train(runner)

    def _stale_checkpoints(self, runner, step: int) -> List[str]:
        """Record ``step`` among the kept checkpoints; the paths that fall
        out of ``max_keep_ckpts``."""
        if self.max_keep_ckpts <= 0 or (self.keep_ckpt_ids
                                        and self.keep_ckpt_ids[-1] == step):
            return []
        stale = []
        while len(self.keep_ckpt_ids) >= self.max_keep_ckpts:
            stale.append(
                self.file_backend.join_path(
                    self.out_dir,
                    self.filename_tmpl.format(self.keep_ckpt_ids.popleft())))
        self.keep_ckpt_ids.append(step)
        runner.message_hub.update_info('keep_ckpt_ids',
                                       list(self.keep_ckpt_ids))
        return stale

    def _save_checkpoint_with_step(self, runner, step: int,
                                   meta: dict) -> None:
        stale = self._stale_checkpoints(runner, step)
        filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir, filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        local = isinstance(self.file_backend, LocalBackend)
        saved_as = f'.{filename}.tmp-{os.getpid()}' if local else filename
        with self._unused_file_client_note_dropped():
            runner.save_checkpoint(
                self.out_dir,
                saved_as,
                self.file_client_args,
                save_optimizer=self.save_optimizer,
                save_param_scheduler=self.save_param_scheduler,
                meta=meta,
                by_epoch=self.by_epoch,
                backend_args=self.backend_args,
                **self.args)
        if not is_main_process():
            return
        if local:
            commit_file(osp.join(self.out_dir, saved_as), self.last_ckpt)
        atomic_write_text(
            osp.join(runner.work_dir, 'last_checkpoint'), self.last_ckpt)
        for path in stale:
            if self.file_backend.isfile(path):
                self.file_backend.remove(path)


def check_checkpoint_fits(model, checkpoint: dict, filename: str,
                          strict: bool) -> None:
    """Refuse a checkpoint that does not belong to ``model``.

    An official release detector's names are compared as the backbone and
    the neck will load them (:func:`~evit_mm.checkpoint.convert_to_evit`).

    Args:
        model (nn.Module): The (unwrapped) model about to get the weights.
        checkpoint (dict): The checkpoint as read.
        filename (str): Its file, for the messages.
        strict (bool): Every tensor of the model must be in the file with
            its shape, and nothing else (resuming, testing). Otherwise only
            the EfficientViT backbone must fit: other parts may differ, as
            when fine-tuning with another number of classes.

    Raises:
        CheckpointError: naming the file and the problem; for an
            EfficientViT backbone of another shape, the arch the file looks
            like.
    """
    weights = extract_state_dict(checkpoint)
    layout = detect_layout(weights)
    if layout == 'official_detector':  # as the backbone and neck load it
        weights, _ = convert_to_evit(weights)
    if layout != 'evit_mm':
        filename = f'{filename} ({LAYOUT_NAMES[layout]} layout)'
    name = f'this {type(model).__name__}'
    check_fit(weights, model.state_dict(), filename, name, problems=())
    backbone = getattr(model, 'backbone', None)
    from ..models.backbones.efficientvit import EfficientViT
    if isinstance(backbone, EfficientViT):
        file_backbone = {
            k[len('backbone.'):]: v
            for k, v in weights.items() if k.startswith('backbone.')
        }
        if not file_backbone:
            raise CheckpointError(
                f'{filename} has no backbone.* weights: it is not a '
                'checkpoint of an EfficientViT model.')
        check_fit(file_backbone, backbone.state_dict(), filename,
                  f'the EfficientViT backbone (arch {backbone.arch!r})',
                  problems=('missing', 'shape mismatch'),
                  presets=backbone.arch_zoo, arch=backbone.arch)
    if strict:
        check_fit(weights, model.state_dict(), filename, name)


@HOOKS.register_module()
class CheckpointFitHook(Hook):
    """Reads the checkpoint the runner is about to load (``load_from``,
    resume, test) safely first, and checks it against the model with
    :func:`check_checkpoint_fits` before its weights are copied.

    Before the run, the file is read with
    :func:`~evit_mm.checkpoint.read_checkpoint`: a missing, truncated or
    code-carrying file is a :class:`~evit_mm.checkpoint.CheckpointError`
    naming it, and a URL is downloaded and checked into torch's hub cache,
    where mmengine's own loader then finds it (that loader would unpickle
    a downloaded file with ``weights_only=False``). The file and whether
    the run resumes come from the runner's config (``load_from``,
    ``resume``), as ``Runner.from_cfg`` and the tools build it; a runner
    built by hand passes them in its ``cfg`` argument too.

    Args:
        strict (bool): Require an exact fit even for ``load_from`` in
            training (resuming always requires it). Defaults to False.
    """

    priority = 'VERY_HIGH'

    def __init__(self, strict: bool = False) -> None:
        self.strict = strict

    @staticmethod
    def _source(runner) -> Optional[str]:
        """The checkpoint the runner loads, as ``Runner.load_or_resume``
        picks it."""
        load_from = runner.cfg.get('load_from')
        if load_from is None and runner.cfg.get('resume', False):
            return find_latest_checkpoint(runner.work_dir)
        return load_from

    def before_run(self, runner) -> None:
        source = self._source(runner)
        if source is not None:
            read_checkpoint(source)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        model = runner.model
        while is_model_wrapper(model) or isinstance(model, BaseTTAModel):
            model = model.module  # as mmengine's load_state_dict unwraps
        check_checkpoint_fits(
            model, checkpoint, self._source(runner) or 'the checkpoint',
            self.strict or bool(runner.cfg.get('resume', False)))


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
