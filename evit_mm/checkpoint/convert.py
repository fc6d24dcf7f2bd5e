"""Weights between layouts: official and timm names to evit_mm's, Conv-BN
fusion, attention-bias table resizing, and which preset a state dict has.
Works on state dicts alone; no model class is needed."""
import re
from collections import OrderedDict
from typing import Iterable, List, Mapping, Optional, Tuple

import torch
import torch.nn.functional as F
from torch.nn.utils.fusion import fuse_conv_bn_weights

from .io import CheckpointError, StateDict


# The layouts :func:`detect_layout` tells apart, in words.
LAYOUT_NAMES = {
    'official': 'official ImageNet release',
    'official_detector': 'official release detector',
    'timm': 'timm',
    'evit_mm': 'evit_mm',
}


def detect_layout(state_dict: StateDict) -> str:
    """The layout of a state dict, from its key names: ``'official'`` (an
    ImageNet release of microsoft/Cream), ``'official_detector'`` (a COCO
    release of its downstream code: official backbone names under
    ``backbone.``, its ``EfficientViTFPN`` names under ``neck.``),
    ``'timm'`` or ``'evit_mm'``."""
    keys = list(state_dict)
    if any(re.match(r'blocks\d\.', k) for k in keys):
        return 'official'
    if any(re.match(r'backbone\.blocks\d\.', k) for k in keys) or any(
            re.match(r'neck\.extra_(trans|fpn)_convs\.', k) for k in keys):
        return 'official_detector'
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


def _indices(keys: Iterable[str], name: str) -> List[int]:
    """The distinct ``N`` of the keys ``name.N.*``, sorted."""
    return sorted({
        int(m.group(1))
        for k in keys for m in [re.match(rf'{name}\.(\d+)\.', k)] if m
    })


def convert_official_fpn(state_dict: StateDict) -> StateDict:
    """Rename the weights of the official downstream ``EfficientViTFPN``
    (no prefix) to evit_mm's. The official neck keeps its coarser extra
    convs in ``fpn_convs`` after one conv per lateral, calls the
    transposed convs ``extra_trans_convs`` and their output convs
    ``extra_fpn_convs``, the latter numbered fine to coarse (output conv
    ``i`` follows transposed conv ``N-1-i``); evit_mm numbers both from the
    backbone outwards. Names already in evit_mm's layout are kept.
    """
    num_laterals = len(_indices(state_dict, 'lateral_convs'))
    num_trans = len(_indices(state_dict, 'extra_fpn_convs'))

    def rename(key: str) -> str:
        match = re.match(r'(fpn_convs|extra_trans_convs|extra_fpn_convs)'
                         r'\.(\d+)\.(.*)$', key)
        if match is None:
            return key
        name, index, rest = match.group(1), int(match.group(2)), \
            match.group(3)
        if name == 'fpn_convs':
            if index < num_laterals:
                return key
            return f'extra_convs.{index - num_laterals}.{rest}'
        if name == 'extra_trans_convs':
            return f'trans_convs.{index}.{rest}'
        return f'trans_fpn_convs.{num_trans - 1 - index}.{rest}'

    return OrderedDict((rename(k), v) for k, v in state_dict.items())


def _convert_detector(state_dict: StateDict) -> StateDict:
    """An official release detector's state dict in evit_mm's names: the
    backbone renamed as an ImageNet release under ``backbone.``, the neck
    by :func:`convert_official_fpn`, the (stock mmdet) heads unchanged."""
    neck = convert_official_fpn(
        OrderedDict((k[len('neck.'):], v) for k, v in state_dict.items()
                    if k.startswith('neck.')))
    converted = OrderedDict()
    for key, value in state_dict.items():
        if key.startswith('backbone.'):
            converted[_to_evit_key(key[len('backbone.'):], 'official')] = \
                value
        elif not key.startswith('neck.'):
            converted[key] = value
    converted.update(('neck.' + k, v) for k, v in neck.items())
    return converted


def convert_to_evit(state_dict: StateDict) -> Tuple[StateDict, str]:
    """Convert an official or timm state dict to evit_mm's whole-model names
    (``backbone.*``, ``head.*``; an official release detector's neck to
    evit_mm's ``neck.*``, its heads kept); derived ``attention_bias_idxs``
    buffers are dropped. evit_mm state dicts pass through unchanged.

    Returns:
        tuple: the converted state dict and the detected layout.
    """
    layout = detect_layout(state_dict)
    weights = OrderedDict((k, v) for k, v in state_dict.items()
                          if not k.endswith('attention_bias_idxs'))
    if layout == 'official_detector':
        return _convert_detector(weights), layout
    converted = OrderedDict(
        (_to_evit_key(k, layout), v) for k, v in weights.items())
    return converted, layout


def describe_checkpoint(keys: Iterable[str]) -> Optional[str]:
    """What a checkpoint is, in words, from some of its key names (as a
    model being loaded sees them: nested files keep their top-level key);
    None when the names do not tell.

    Args:
        keys (Iterable[str]): Key names of the checkpoint's state dict.
    """
    keys = list(keys)
    if 'model' in keys:  # the ImageNet releases' {'model': state_dict}
        return LAYOUT_NAMES['official']
    layout = detect_layout(dict.fromkeys(keys))
    if layout != 'evit_mm':
        return LAYOUT_NAMES[layout]
    for prefix, kind in (('head.', 'mmpretrain classifier'),
                         ('decode_head.', 'mmseg segmentor')):
        if any(k.startswith(prefix) for k in keys):
            return kind
    return None


def fuse_bn_linear_weights(linear_weight: torch.Tensor,
                           linear_bias: torch.Tensor,
                           bn_mean: torch.Tensor,
                           bn_var: torch.Tensor,
                           bn_eps: float,
                           bn_weight: torch.Tensor,
                           bn_bias: torch.Tensor
                           ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Weight and bias of one linear layer equal to BatchNorm (in eval
    mode) followed by ``linear``. (torch's ``fuse_linear_bn_weights`` folds
    a BN that comes *after* the linear layer.)

    Args:
        linear_weight (Tensor): ``(out, in)`` weight of the linear layer.
        linear_bias (Tensor): ``(out,)`` bias of the linear layer.
        bn_mean, bn_var (Tensor): ``(in,)`` running statistics of the BN.
        bn_eps (float): The BN's eps.
        bn_weight, bn_bias (Tensor): ``(in,)`` affine parameters of the BN.
    """
    scale = bn_weight * torch.rsqrt(bn_var + bn_eps)
    shift = bn_bias - bn_mean * scale
    return linear_weight * scale, linear_bias + linear_weight @ shift


def fuse_state_dict(state_dict: StateDict, eps: float) -> StateDict:
    """Fold every Conv-BN (``X.conv`` + ``X.bn``) and BN-Linear (``X.bn`` +
    ``X.linear``) pair of a state dict into fused weights, as
    ``switch_to_deploy`` does to a model.

    Args:
        state_dict (dict): evit_mm names.
        eps (float): The eps of the BN layers, which state dicts do not
            store: :data:`evit_mm.models.layers.BN_EPS` for EfficientViT.
    """
    fused = OrderedDict(state_dict)
    for key in [k for k in state_dict if k.endswith('.bn.running_var')]:
        base = key[:-len('bn.running_var')]
        bn = [fused.pop(f'{base}bn.{n}') for n in (
            'running_mean', 'running_var', 'weight', 'bias')]
        fused.pop(f'{base}bn.num_batches_tracked', None)
        mean, var, weight, bias = bn
        if f'{base}conv.weight' in fused:
            pair = fuse_conv_bn_weights(fused[f'{base}conv.weight'], None,
                                        mean, var, eps, weight, bias)
            names = ('conv.weight', 'conv.bias')
        else:
            pair = fuse_bn_linear_weights(fused[f'{base}linear.weight'],
                                          fused[f'{base}linear.bias'],
                                          mean, var, eps, weight, bias)
            names = ('linear.weight', 'linear.bias')
        for name, tensor in zip(names, pair):
            fused[base + name] = tensor.detach()
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


def guess_arch(backbone_state: StateDict,
               presets: Mapping[str, dict]) -> Optional[str]:
    """The name of the preset whose shapes a backbone state dict (evit_mm
    names, no prefix) has, or None.

    Args:
        backbone_state (dict): Backbone weights.
        presets (Mapping[str, dict]): Arch settings by name, each with
            ``embed_dims``, ``depths`` and ``num_heads`` per stage (e.g.
            ``EfficientViT.arch_zoo``).
    """
    if 'patch_embed.6.conv.weight' not in backbone_state:
        return None
    dims, depths, heads = [], [], []
    while True:
        stage = len(dims)
        attn = f'stages.{stage}.blocks.0.mixer.branch.attn.'
        bias = backbone_state.get(attn + 'attention_biases')
        proj = backbone_state.get(attn + 'proj.1.conv.weight')
        if bias is None or proj is None:
            break
        blocks = {
            int(m.group(1))
            for k in backbone_state
            for m in [re.match(rf'stages\.{stage}\.blocks\.(\d+)\.', k)] if m
        }
        dims.append(proj.shape[0])
        depths.append(len(blocks))
        heads.append(bias.shape[0])
    for name, arch in presets.items():
        if (list(arch['embed_dims']), list(arch['depths']),
                list(arch['num_heads'])) == (dims, depths, heads):
            return name
    return None

