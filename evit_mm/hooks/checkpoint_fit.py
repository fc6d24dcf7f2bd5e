"""The check that a loaded checkpoint belongs to the model, and the hook
that runs it (and reads the file safely first) for every run."""
from typing import Optional

from mmengine.hooks import Hook
from mmengine.model import BaseTTAModel, is_model_wrapper
from mmengine.registry import HOOKS
from mmengine.runner import find_latest_checkpoint

from ..checkpoint import (LAYOUT_NAMES, CheckpointError, check_fit,
                          convert_to_evit, detect_layout, extract_state_dict,
                          read_checkpoint)
from ..models.backbones.efficientvit import EfficientViT

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
