"""Reading every EfficientViT checkpoint layout safely, in one place.

Layouts understood:

* ``official``: microsoft/Cream releases, ``{'model': state_dict}`` with
  names like ``blocks2.1.conv1.c.weight`` and ``head.l.weight``;
* ``timm``: ``efficientvit_m*`` of pytorch-image-models (``.pth`` or
  ``.safetensors``), names like ``stages.1.downsample.patchmerge.conv1``;
* ``evit_mm``: this package's own names, bare or inside a whole model
  (``backbone.`` / ``head.`` prefixes, mmengine ``{'state_dict': ...}``).

Everything is read with ``torch.load(weights_only=True)`` (plus an explicit
allow-list of the plain types mmengine stores in its checkpoints), so a file
that carries code cannot run it.
"""
import os
import pickle
import re
from collections import OrderedDict
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.logging import print_log

StateDict = Dict[str, torch.Tensor]


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be read or does not fit the model."""


def _numpy_safe_globals() -> list:
    """numpy types that mmengine's message hub stores in checkpoints."""
    try:
        from numpy._core.multiarray import _reconstruct, scalar
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct, scalar
    dtypes = [
        type(np.dtype(name)) for name in ('float64', 'float32', 'float16',
                                          'int64', 'int32', 'bool', 'uint8')
    ]
    return [np.ndarray, np.dtype, _reconstruct, scalar, *dtypes]


def _history_buffer_getattr(owner, name: str):
    """Stands in for ``getattr`` while unpickling, where the only use
    allowed is the one mmengine's ``HistoryBuffer`` makes: its state stores
    its statistics methods, pickled as ``getattr(HistoryBuffer, 'mean')``.
    Every other lookup is refused (a free ``getattr`` would let a pickle
    reach and call arbitrary functions)."""
    from mmengine.logging.history_buffer import HistoryBuffer
    methods = {'min', 'max', 'mean', 'current'} | set(
        HistoryBuffer._statistics_methods)
    if (owner is HistoryBuffer or isinstance(owner, HistoryBuffer)) and \
            name in methods:
        return getattr(owner, name)
    raise pickle.UnpicklingError(
        f'Refused getattr({type(owner).__name__}, {name!r}) while loading a '
        'checkpoint: only the statistics methods of mmengine\'s '
        'HistoryBuffer may be looked up.')


def safe_globals() -> list:
    """The allow-list of non-tensor types accepted when unpickling: numpy
    arrays/scalars and mmengine's ``HistoryBuffer`` (training logs), with
    the restricted ``getattr`` its pickled state needs."""
    from mmengine.logging.history_buffer import HistoryBuffer
    return _numpy_safe_globals() + [
        HistoryBuffer, (_history_buffer_getattr, 'builtins.getattr')
    ]


def safe_torch_load(filename: str, map_location='cpu'):
    """``torch.load`` restricted to tensors and :func:`safe_globals`.

    Raises:
        CheckpointError: naming the file, when it is missing, unreadable,
            truncated, or holds objects outside the allow-list (such as code
            to run at unpickling time, which is never executed).
    """
    if not os.path.isfile(filename):
        raise CheckpointError(f'Checkpoint file not found: {filename}')
    try:
        with torch.serialization.safe_globals(safe_globals()):
            return torch.load(
                filename, map_location=map_location, weights_only=True)
    except Exception as err:  # every failure here means "unreadable"
        message = str(err)
        if 'Weights only load failed' in message or 'Unsupported global' \
                in message or 'unpickl' in message.lower():
            raise CheckpointError(
                f'Refused to load {filename}: it holds objects other than '
                'tensors and plain data (a pickle that may run code). Only '
                'weights are loaded; nothing in the file was executed. '
                f'Details: {message.splitlines()[0]}') from err
        raise CheckpointError(
            f'Cannot read checkpoint {filename} (truncated or not a PyTorch '
            f'checkpoint): {message.splitlines()[0] if message else err!r}'
        ) from err


def read_checkpoint(filename: str) -> dict:
    """Read a local path or http(s) URL (``.pth`` or ``.safetensors``) into a
    dict, safely. URLs are cached by :func:`torch.hub.download_url_to_file`
    in torch's hub directory."""
    if filename.startswith(('http://', 'https://')):
        cache_dir = os.path.join(torch.hub.get_dir(), 'checkpoints')
        os.makedirs(cache_dir, exist_ok=True)
        local = os.path.join(cache_dir, os.path.basename(filename))
        if not os.path.isfile(local):
            torch.hub.download_url_to_file(filename, local)
        filename = local
    if filename.endswith('.safetensors'):
        if not os.path.isfile(filename):
            raise CheckpointError(f'Checkpoint file not found: {filename}')
        from safetensors import SafetensorError
        from safetensors.torch import load_file
        try:
            return load_file(filename)
        except (SafetensorError, OSError, ValueError) as err:
            raise CheckpointError(
                f'Cannot read safetensors file {filename}: {err}') from err
    checkpoint = safe_torch_load(filename)
    if not isinstance(checkpoint, dict):
        raise CheckpointError(
            f'{filename} holds a {type(checkpoint).__name__}, not a dict of '
            'weights.')
    return checkpoint


def extract_state_dict(checkpoint: dict) -> StateDict:
    """The weights of a checkpoint dict (``state_dict``, ``model`` or the dict
    itself), with any DataParallel ``module.`` prefix removed."""
    for key in ('state_dict', 'model'):
        if isinstance(checkpoint.get(key), dict):
            checkpoint = checkpoint[key]
            break
    return OrderedDict(
        (re.sub(r'^module\.', '', k), v) for k, v in checkpoint.items()
        if isinstance(v, torch.Tensor))


def detect_layout(state_dict: StateDict) -> str:
    """``'official'``, ``'timm'`` or ``'evit_mm'`` from the key names."""
    keys = list(state_dict)
    if any(re.match(r'blocks\d\.', k) for k in keys):
        return 'official'
    if any(k.startswith('patch_embed.conv1.') for k in keys) or any(
            '.downsample.patchmerge.' in k for k in keys):
        return 'timm'
    return 'evit_mm'


def _rename(key: str, rules: List[Tuple[str, str]]) -> str:
    for pattern, repl in rules:
        key = re.sub(pattern, repl, key)
    return key


# Rules shared by the official and timm layouts, applied after the
# stage/block renaming of each.
_COMMON_RULES = [
    (r'\.m\.', '.branch.'),
    (r'\.attn\.dws\.', '.attn.q_dws.'),
]

_TIMM_RULES = [
    (r'^patch_embed\.conv(\d)\.',
     lambda m: f'patch_embed.{2 * (int(m.group(1)) - 1)}.'),
    (r'\.downsample\.res1\.', '.downsample.pre.'),
    (r'\.downsample\.patchmerge\.', '.downsample.merge.'),
    (r'\.downsample\.res2\.', '.downsample.post.'),
    (r'^head\.(bn|linear)\.', r'head.classifier.\1.'),
]


def _official_stage_key(key: str) -> str:
    """``blocksS.J.rest`` -> our stage/block name. In stages 2 and 3 the
    official list starts with the downsample: [dw+FFN, PatchMerging,
    dw+FFN], then the blocks."""
    match = re.match(r'^blocks(\d)\.(\d+)\.(.*)$', key)
    if match is None:
        return key
    stage, index, rest = int(match.group(1)) - 1, int(match.group(2)), \
        match.group(3)
    if stage > 0:
        if index < 3:
            part = ('pre', 'merge', 'post')[index]
            return f'stages.{stage}.downsample.{part}.{rest}'
        index -= 3
    return f'stages.{stage}.blocks.{index}.{rest}'


_OFFICIAL_RULES = [
    (r'\.c\.(weight|bias|running_mean|running_var|num_batches_tracked)$',
     r'.conv.\1'),
    (r'\.l\.(weight|bias)$', r'.linear.\1'),
    (r'^head\.', 'head.classifier.'),
    (r'^head_dist\.', 'head.dist_classifier.'),
]


def _to_evit_key(key: str, layout: str) -> str:
    """One key of ``layout`` in evit_mm's whole-model names: backbone keys
    get ``backbone.``, classifier keys ``head.``."""
    if layout == 'official':
        key = _rename(_official_stage_key(key), _OFFICIAL_RULES)
    elif layout == 'timm':
        key = _rename(key, _TIMM_RULES)
    else:
        return key
    key = _rename(key, _COMMON_RULES)
    return key if key.startswith('head.') else 'backbone.' + key


def convert_to_evit(state_dict: StateDict) -> Tuple[StateDict, str]:
    """Convert an official or timm state dict to evit_mm's whole-model names
    (``backbone.*``, ``head.*``); derived ``attention_bias_idxs`` buffers
    are dropped. evit_mm state dicts pass through unchanged.

    Returns:
        tuple: the converted state dict and the detected layout.
    """
    layout = detect_layout(state_dict)
    converted = OrderedDict(
        (_to_evit_key(k, layout), v) for k, v in state_dict.items()
        if not k.endswith('attention_bias_idxs'))
    return converted, layout


def fuse_state_dict(state_dict: StateDict) -> StateDict:
    """Fold every Conv-BN (``X.conv`` + ``X.bn``) and BN-Linear (``X.bn`` +
    ``X.linear``) pair of a state dict into fused weights, as
    ``switch_to_deploy`` does to a model."""
    fused = OrderedDict(state_dict)
    for key in [k for k in state_dict if k.endswith('.bn.running_var')]:
        base = key[:-len('bn.running_var')]
        bn = {n: fused.pop(f'{base}bn.{n}') for n in (
            'weight', 'bias', 'running_mean', 'running_var')}
        fused.pop(f'{base}bn.num_batches_tracked', None)
        scale = bn['weight'] / torch.sqrt(bn['running_var'] + 1e-5)
        shift = bn['bias'] - bn['running_mean'] * scale
        if f'{base}conv.weight' in fused:
            weight = fused[f'{base}conv.weight']
            fused[f'{base}conv.weight'] = weight * scale[:, None, None, None]
            fused[f'{base}conv.bias'] = shift
        else:
            weight = fused[f'{base}linear.weight']
            fused[f'{base}linear.bias'] = fused[f'{base}linear.bias'] + \
                weight @ shift
            fused[f'{base}linear.weight'] = weight * scale[None, :]
    return fused


def resize_attention_biases(table: torch.Tensor,
                            window_size: int) -> torch.Tensor:
    """Resize a ``(heads, S*S)`` offset-bias table to ``window_size``
    bicubically, viewing it as ``heads`` S x S maps (the official downstream
    loader's rule)."""
    heads, length = table.shape
    side = int(round(length**0.5))
    if side * side != length:
        raise CheckpointError(f'An attention-bias table of {length} entries '
                              'is not square.')
    resized = F.interpolate(
        table.float().view(1, heads, side, side),
        size=(window_size, window_size),
        mode='bicubic',
        align_corners=False)
    return resized.view(heads, window_size * window_size).to(table.dtype)


def guess_arch(backbone_state: StateDict) -> Optional[str]:
    """The preset (``'m0'``...``'m5'``) whose shapes a backbone state dict
    (evit_mm names, no prefix) has, or None."""
    from .models.backbones.efficientvit import EfficientViT
    dims, depths, heads = [], [], []
    stem = backbone_state.get('patch_embed.6.conv.weight')
    if stem is None:
        return None
    for stage in range(EfficientViT.num_stages):
        blocks = {
            int(m.group(1))
            for k in backbone_state
            for m in [re.match(rf'stages\.{stage}\.blocks\.(\d+)\.', k)] if m
        }
        bias = backbone_state.get(
            f'stages.{stage}.blocks.0.mixer.branch.attn.attention_biases')
        proj = backbone_state.get(
            f'stages.{stage}.blocks.0.mixer.branch.attn.proj.1.conv.weight')
        if bias is None or proj is None:
            return None
        dims.append(proj.shape[0])
        depths.append(len(blocks))
        heads.append(bias.shape[0])
    for name, arch in EfficientViT.arch_zoo.items():
        if (arch['embed_dims'], arch['depths'],
                arch['num_heads']) == (dims, depths, heads):
            return name
    return None


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
        file_arch = guess_arch(weights)
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
