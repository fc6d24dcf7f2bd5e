"""Fitting converted weights into a given EfficientViT backbone or whole
model, strictly, with a report of what was loaded, resized and left out;
the one check of whether a checkpoint fits a model; and the load hooks of
the backbone and the neck, which convert the official layouts and refuse
any load that leaves one of their tensors at its initialisation."""
from collections import OrderedDict
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import torch.nn as nn
from mmengine.logging import print_log

from .convert import (LAYOUT_NAMES, convert_official_fpn, convert_to_evit,
                      describe_checkpoint, detect_layout, fuse_state_dict,
                      guess_arch, resize_attention_biases)
from .io import (CheckpointError, MapLocation, StateDict, extract_state_dict,
                 read_checkpoint)

FIT_PROBLEMS = ('missing', 'unexpected', 'shape mismatch')


def _names(keys: Iterable[str], limit: int = 6) -> str:
    keys = list(keys)
    more = f' and {len(keys) - limit} more' if len(keys) > limit else ''
    return f'{keys[:limit]}{more}'


def check_fit(weights: Mapping, target: Mapping, filename: str, model: str,
              problems: Sequence[str] = FIT_PROBLEMS,
              presets: Optional[Mapping[str, dict]] = None,
              arch: Optional[str] = None) -> None:
    """Refuse weights that do not fit a model's state dict.

    Args:
        weights (Mapping): The file's tensors, named as in ``target``.
        target (Mapping): The model's state dict.
        filename (str): The file, for the message.
        model (str): What the model is, for the message (``'this
            RetinaNet'``).
        problems (Sequence[str]): Which of ``'missing'``, ``'unexpected'``
            and ``'shape mismatch'`` are errors. With none, the weights only
            need a tensor in common with the model.
        presets (Mapping[str, dict], optional): Arch presets of an
            EfficientViT (``arch_zoo``): the message then names the preset
            the file looks like, when it is not ``arch``.
        arch (str, optional): The model's arch.

    Raises:
        CheckpointError: naming the file, the model and the offending keys.
    """
    if not any(k in target for k in weights):
        raise CheckpointError(
            f'{filename} holds weights of another model: none of its '
            f'{len(weights)} tensors {_names(weights)} is a tensor of '
            f'{model} {_names(target)}.')
    found = {
        'missing': [k for k in target if k not in weights],
        'unexpected': [k for k in weights if k not in target],
        'shape mismatch': [
            f'{k}: file {tuple(weights[k].shape)}, model '
            f'{tuple(target[k].shape)}' for k in weights
            if k in target and weights[k].shape != target[k].shape
        ],
    }
    found = {name: found[name] for name in problems if found[name]}
    if not found:
        return
    hint = ''
    if presets is not None:
        file_arch = guess_arch(weights, presets)
        if file_arch is None:
            hint = 'its weights match no preset arch; '
        elif file_arch != arch:
            hint = f'it looks like arch {file_arch!r}; '
    raise CheckpointError(
        f'{filename} does not fit {model}: {hint}' +
        '; '.join(f'{name} ({len(keys)}): {_names(keys)}'
                  for name, keys in found.items()))


def _resize_tables(weights: StateDict, target: StateDict,
                   prefix: str = '') -> List[str]:
    """Resize, in place, the attention-bias tables of ``weights`` (named
    ``prefix`` + a key of ``target``) whose size is not the model's; the
    keys resized."""
    resized = []
    for key, value in weights.items():
        name = key[len(prefix):]
        if key.startswith(prefix) and name.endswith('attention_biases') and \
                name in target and value.dim() == 2 and \
                value.shape != target[name].shape:
            window = int(round(target[name].shape[1]**0.5))
            weights[key] = resize_attention_biases(value, window)
            resized.append(key)
    return resized


def _select_backbone(state_dict: StateDict, prefix: Optional[str],
                     filename: str) -> Tuple[StateDict, int]:
    """Backbone weights without prefix, and the number of tensors left out
    (heads, necks: everything outside the backbone)."""
    if prefix is None:
        prefix = 'backbone.' if any(
            k.startswith('backbone.') for k in state_dict) else ''
    selected = OrderedDict(
        (k[len(prefix):], v) for k, v in state_dict.items()
        if k.startswith(prefix))
    if not selected:
        raise CheckpointError(
            f'No weights in {filename} start with prefix {prefix!r}; its '
            f'first keys are {list(state_dict)[:5]}.')
    heads = [k for k in selected if k.startswith('head.')]
    for key in heads:
        selected.pop(key)
    return selected, len(state_dict) - len(selected)


def _fit_backbone_weights(weights: StateDict,
                          backbone: nn.Module) -> Tuple[StateDict, List[str]]:
    """Backbone weights made to fit ``backbone``: fused with its BN eps
    (``bn_eps``) when it is fused (``deploy``) and they are not,
    attention-bias tables resized to its windows. Returns them and the
    resized keys."""
    target = backbone.state_dict()
    if any(k.endswith('.bn.running_var') for k in weights) and not any(
            k.endswith('.bn.running_var') for k in target):
        weights = fuse_state_dict(weights, backbone.bn_eps)
    return weights, _resize_tables(weights, target)


def load_backbone_checkpoint(backbone: nn.Module,
                             filename: str,
                             prefix: Optional[str] = None,
                             map_location: MapLocation = 'cpu',
                             logger: str = 'current') -> Dict[str, list]:
    """Load an official, timm or evit_mm checkpoint into an EfficientViT
    backbone, strictly.

    Attention-bias tables are resized to the backbone's windows, derived
    buffers and classification heads are dropped, unfused weights are fused
    for a deploy-mode backbone. Every backbone tensor must be present with the
    right shape, and every backbone tensor of the file must be used.

    Args:
        backbone (nn.Module): An :class:`EfficientViT`.
        filename (str): Path, URL or any location
            :func:`~evit_mm.checkpoint.read_checkpoint` reads.
        prefix (str, optional): Prefix of the backbone's keys in the file
            (e.g. ``'backbone.'``); by default ``backbone.`` when present.
        map_location: Where tensors are read to, as in :func:`torch.load`.
            Defaults to ``'cpu'``.
        logger (str): mmengine logger for the load report.

    Returns:
        dict: ``resized`` keys whose bias table was resized, ``loaded``
        count.

    Raises:
        CheckpointError: naming the file and the offending keys, with the
            arch the file looks like when shapes disagree.
    """
    state_dict, layout = convert_to_evit(
        extract_state_dict(read_checkpoint(filename, map_location)))
    weights, dropped = _select_backbone(state_dict, prefix, filename)
    target = backbone.state_dict()
    weights, resized = _fit_backbone_weights(weights, backbone)
    arch = getattr(backbone, 'arch', None)
    check_fit(weights, target, f'{filename} ({layout} layout)',
              f'the EfficientViT backbone (arch {arch!r})',
              presets=getattr(backbone, 'arch_zoo', None), arch=arch)
    backbone.load_state_dict(weights, strict=True)
    print_log(
        f'Loaded {len(weights)} backbone tensors from {filename} ({layout} '
        f'layout); left out {dropped} non-backbone tensors; resized '
        f'{len(resized)} attention-bias tables to the model windows'
        + (f': {resized}' if resized else '.'),
        logger=logger)
    return dict(loaded=len(weights), resized=resized)


def adapt_model_state_dict(state_dict: dict, prefix: str,
                           backbone: nn.Module) -> None:
    """Rewrite, in place, the state dict being loaded into a whole model
    (``backbone.*``, ``head.*`` under ``prefix``) so that official and timm
    checkpoints load directly: their keys are converted to evit_mm names
    (also when still nested under ``model``, as mmengine passes the official
    ``{'model': ...}`` files) and ``backbone.`` attention-bias tables are
    resized to ``backbone``'s windows. evit_mm state dicts keep their keys.

    Args:
        state_dict (dict): The dict handed to a load-state-dict pre-hook.
        prefix (str): The model's prefix in it.
        backbone (nn.Module): The model's EfficientViT backbone.
    """
    own = {k: v for k, v in state_dict.items() if k.startswith(prefix)}
    nested = own.get(prefix + 'model')
    if isinstance(nested, dict) and len(own) == 1:
        weights = extract_state_dict(nested)
    else:
        weights = OrderedDict((k[len(prefix):], v) for k, v in own.items())
    converted, layout = convert_to_evit(weights)
    _resize_tables(converted, backbone.state_dict(), prefix='backbone.')
    for key in own:
        del state_dict[key]
    state_dict.update((prefix + k, v) for k, v in converted.items())
    if layout != 'evit_mm':
        print_log(
            f'Converted a {layout} checkpoint to evit_mm names while '
            'loading.',
            logger='current')


# Checkpoints that hold a classifier: they start a backbone, not a detector
# or segmentor.
_CLASSIFIER_KINDS = (LAYOUT_NAMES['official'], LAYOUT_NAMES['timm'],
                     'mmpretrain classifier')


def check_loaded_part(weights: Mapping,
                      target: Mapping,
                      part: str,
                      seen_keys: Iterable[str],
                      presets: Optional[Mapping[str, dict]] = None,
                      arch: Optional[str] = None) -> None:
    """Refuse weights that would leave any tensor of a model part at its
    initialisation: missing from the checkpoint, or of another shape. Extra
    tensors alone are no error (the loaders report them).

    Args:
        weights (Mapping): The part's tensors in the checkpoint, named as in
            ``target``.
        target (Mapping): The part's state dict.
        part (str): The part, for the message (``"the EfficientViTFPN neck
            at 'neck.'"``).
        seen_keys (Iterable[str]): Key names of the checkpoint, as many as
            are known, to name its layout
            (:func:`~evit_mm.checkpoint.describe_checkpoint`).
        presets (Mapping[str, dict], optional): Arch presets, as in
            :func:`check_fit`.
        arch (str, optional): The part's arch, as in :func:`check_fit`.

    Raises:
        CheckpointError: naming the part, the tensors that do not fit and,
            where the key names tell, the checkpoint's layout.
    """
    # BatchNorm fills in a missing batch counter itself (as mmengine says).
    needed = {
        k: v
        for k, v in target.items()
        if k in weights or not k.endswith('num_batches_tracked')
    }
    if all(k in weights and weights[k].shape == v.shape
           for k, v in needed.items()):
        return
    kind = describe_checkpoint(seen_keys)
    source = 'The checkpoint' + (f' ({kind} layout)' if kind else '')
    if not weights:
        advice = ' It holds a classifier: give it to the backbone as ' \
            "init_cfg=dict(type='Pretrained', checkpoint=FILE)." \
            if kind in _CLASSIFIER_KINDS else ''
        raise CheckpointError(
            f'{source} has no weights for {part}: all its {len(needed)} '
            f'tensors would stay at their initialisation.{advice}')
    check_fit(weights, needed, source, part, presets=presets, arch=arch)


def _take(state_dict: dict, prefix: str) -> StateDict:
    """Remove the entries under ``prefix`` from ``state_dict``; them, with
    the prefix stripped."""
    own = [k for k in state_dict if k.startswith(prefix)]
    return OrderedDict((k[len(prefix):], state_dict.pop(k)) for k in own)


def backbone_load_pre_hook(backbone: nn.Module, state_dict: dict,
                           prefix: str, local_metadata: dict, strict: bool,
                           missing_keys: List[str],
                           unexpected_keys: List[str],
                           error_msgs: List[str]) -> None:
    """Load-state-dict pre-hook of the EfficientViT backbone, so that every
    loader (``torch.nn.Module.load_state_dict`` and mmengine's
    ``load_state_dict``, strict or not: ``load_from``, ``tools/test.py``,
    ``init_detector``, the inferencers) loads it completely or not at all.

    Its weights in ``state_dict`` are rewritten in place: official and timm
    names (also under a detector's ``backbone.``, as in the official
    release detectors) become evit_mm's, derived ``attention_bias_idxs``
    buffers are dropped, attention-bias tables are resized to the windows,
    unfused weights are fused for a fused backbone. Then every backbone
    tensor must be there with its shape (:func:`check_loaded_part`).
    """
    raw = _take(state_dict, prefix)
    weights = raw
    if detect_layout(raw) in ('official', 'timm'):
        converted, _ = convert_to_evit(raw)
        weights = OrderedDict(
            (k[len('backbone.'):] if k.startswith('backbone.') else k, v)
            for k, v in converted.items())
    target = backbone.state_dict()
    weights, _ = _fit_backbone_weights(weights, backbone)
    check_loaded_part(
        weights, target,
        f'the EfficientViT backbone (arch {backbone.arch!r}) at {prefix!r}',
        [prefix + k for k in raw] + unexpected_keys,
        presets=backbone.arch_zoo, arch=backbone.arch)
    state_dict.update((prefix + k, v) for k, v in weights.items())


def fpn_load_pre_hook(neck: nn.Module, state_dict: dict, prefix: str,
                      local_metadata: dict, strict: bool,
                      missing_keys: List[str], unexpected_keys: List[str],
                      error_msgs: List[str]) -> None:
    """Load-state-dict pre-hook of ``EfficientViTFPN``, as
    :func:`backbone_load_pre_hook`: the official downstream neck's names
    are converted (:func:`~evit_mm.checkpoint.convert_official_fpn`), and
    every neck tensor must be there with its shape."""
    raw = _take(state_dict, prefix)
    weights = convert_official_fpn(raw)
    check_loaded_part(weights, neck.state_dict(),
                      f'the EfficientViTFPN neck at {prefix!r}',
                      [prefix + k for k in raw] + unexpected_keys)
    state_dict.update((prefix + k, v) for k, v in weights.items())
