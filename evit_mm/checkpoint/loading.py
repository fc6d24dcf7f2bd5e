"""Fitting converted weights into a given EfficientViT backbone or whole
model, strictly, with a report of what was loaded, resized and left out."""
from collections import OrderedDict
from typing import Dict, Optional, Tuple

import torch.nn as nn
from mmengine.logging import print_log

from .convert import (convert_to_evit, fuse_state_dict, guess_arch,
                      resize_attention_biases)
from .io import CheckpointError, StateDict, extract_state_dict, read_checkpoint


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


def load_backbone_checkpoint(backbone: nn.Module,
                             filename: str,
                             prefix: Optional[str] = None,
                             logger: str = 'current') -> Dict[str, list]:
    """Load an official, timm or evit_mm checkpoint into an EfficientViT
    backbone, strictly.

    Attention-bias tables are resized to the backbone's windows, derived
    buffers and classification heads are dropped, unfused weights are fused
    for a deploy-mode backbone. Every backbone tensor must be present with the
    right shape, and every backbone tensor of the file must be used.

    Args:
        backbone (nn.Module): An :class:`EfficientViT`.
        filename (str): Path or URL of the checkpoint.
        prefix (str, optional): Prefix of the backbone's keys in the file
            (e.g. ``'backbone.'``); by default ``backbone.`` when present.
        logger (str): mmengine logger for the load report.

    Returns:
        dict: ``resized`` keys whose bias table was resized, ``loaded``
        count.

    Raises:
        CheckpointError: naming the file and the offending keys, with the
            arch the file looks like when shapes disagree.
    """
    state_dict, layout = convert_to_evit(
        extract_state_dict(read_checkpoint(filename)))
    weights, dropped = _select_backbone(state_dict, prefix, filename)
    target = backbone.state_dict()
    if any(k.endswith('.bn.running_var') for k in weights) and not any(
            k.endswith('.bn.running_var') for k in target):
        weights = fuse_state_dict(weights)

    resized = []
    for key, value in weights.items():
        if key.endswith('attention_biases') and key in target and \
                value.dim() == 2 and value.shape != target[key].shape:
            window = int(round(target[key].shape[1]**0.5))
            weights[key] = resize_attention_biases(value, window)
            resized.append(key)

    missing = [k for k in target if k not in weights]
    unexpected = [k for k in weights if k not in target]
    mismatched = [
        f'{k}: file {tuple(weights[k].shape)} vs model '
        f'{tuple(target[k].shape)}' for k in weights
        if k in target and weights[k].shape != target[k].shape
    ]
    if missing or unexpected or mismatched:
        model_arch = getattr(backbone, 'arch', '?')
        file_arch = guess_arch(weights, getattr(backbone, 'arch_zoo', {}))
        hint = (f' The file looks like arch {file_arch!r}, the model is '
                f'{model_arch!r}.' if file_arch and file_arch != model_arch
                else '')
        details = '; '.join(
            f'{name} ({len(keys)}): {keys[:6]}'
            for name, keys in (('missing', missing), ('unexpected',
                                                      unexpected),
                               ('shape mismatch', mismatched)) if keys)
        raise CheckpointError(
            f'{filename} ({layout} layout) does not fit the EfficientViT '
            f'backbone.{hint} {details}')
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
    target = backbone.state_dict()
    for key, value in converted.items():
        name = key[len('backbone.'):]
        if key.startswith('backbone.') and key.endswith(
                'attention_biases') and name in target and value.dim() == 2 \
                and value.shape != target[name].shape:
            window = int(round(target[name].shape[1]**0.5))
            converted[key] = resize_attention_biases(value, window)
    for key in own:
        del state_dict[key]
    state_dict.update((prefix + k, v) for k, v in converted.items())
    if layout != 'evit_mm':
        print_log(
            f'Converted a {layout} checkpoint to evit_mm names while '
            'loading.',
            logger='current')
