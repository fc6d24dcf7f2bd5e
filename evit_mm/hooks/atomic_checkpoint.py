"""The checkpoint hook the tools use: checkpoints and the
``last_checkpoint`` pointer that survive a kill at any moment."""
import contextlib
import inspect
import os
import os.path as osp
from typing import List

import mmengine
from mmengine.dist import is_main_process
from mmengine.fileio import LocalBackend
from mmengine.hooks import CheckpointHook
from mmengine.registry import HOOKS

# The one private method of mmengine's CheckpointHook that
# AtomicCheckpointHook overrides, and the arguments it is called with by
# CheckpointHook._save_checkpoint and _save_best_checkpoint.
SAVE_STEP = '_save_checkpoint_with_step'
SAVE_STEP_PARAMETERS = ('self', 'runner', 'step', 'meta')


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


def check_save_step_seam() -> None:
    """Check that the installed mmengine saves every checkpoint through
    ``CheckpointHook._save_checkpoint_with_step(runner, step, meta)``, the
    method :class:`AtomicCheckpointHook` replaces.

    Raises:
        RuntimeError: naming the installed mmengine version and what is
            expected, where that method is missing, takes other arguments
            or is no longer called when a checkpoint is saved: the hook
            would otherwise save checkpoints without its guarantees.
    """
    expected = (f'CheckpointHook.{SAVE_STEP}'
                f'({", ".join(SAVE_STEP_PARAMETERS)}), called by '
                'CheckpointHook._save_checkpoint')
    method = getattr(CheckpointHook, SAVE_STEP, None)
    if method is None:
        found = 'no such method'
    else:
        parameters = tuple(inspect.signature(method).parameters)
        caller = getattr(CheckpointHook, '_save_checkpoint', None)
        if parameters != SAVE_STEP_PARAMETERS:
            found = f'{SAVE_STEP}({", ".join(parameters)})'
        elif caller is None or SAVE_STEP not in caller.__code__.co_names:
            found = f'a _save_checkpoint that does not call {SAVE_STEP}'
        else:
            return
    raise RuntimeError(
        f'AtomicCheckpointHook does not support mmengine '
        f'{mmengine.__version__}: it replaces {expected}; found {found}. '
        'Use mmengine>=0.10.0,<1.0.0, or the plain CheckpointHook (whose '
        'writes are not atomic).')


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

    mmengine has no public step between removing old checkpoints, saving
    and writing the pointer, so this hook replaces the private
    ``CheckpointHook._save_checkpoint_with_step``; constructing it checks
    that the installed mmengine still has that method
    (:func:`check_save_step_seam`).
    """

    def __init__(self, *args, **kwargs) -> None:
        check_save_step_seam()
        super().__init__(*args, **kwargs)

    def _unused_file_client_note_dropped(self):
        """mmengine builds a FileClient before training and at each save
        even when none is configured, and says it is deprecated."""
        if self.file_client_args is not None:
            return contextlib.nullcontext()
        from ..engine.quiet import FILE_CLIENT_DEPRECATION, drop_logged
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
            elif self.file_backend.isdir(path):  # as DeepSpeed saves them
                self.file_backend.rmtree(path)
