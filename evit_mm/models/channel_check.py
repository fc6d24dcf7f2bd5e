"""Check, once a whole model is built, that what reads EfficientViT's maps
(the neck, or without one the decode heads) was built for their channels.

A stock config whose backbone is swapped for EfficientViT but whose neck
keeps the old ``in_channels`` otherwise fails at the first forward with a
convolution shape error; the tools call :func:`check_backbone_channels`
after building the model, before training, testing or exporting starts.
"""
from typing import List, Optional, Sequence, Tuple, Union

import torch.nn as nn

from .backbones.efficientvit import EfficientViT

# Necks whose ``in_channels`` list the levels coarsest first.
COARSE_FIRST_NECKS = ('YOLOV3Neck', )


Channels = Union[int, List[int]]


def _expected_neck_channels(neck: nn.Module,
                            channels: List[int]) -> Tuple[Channels, Channels]:
    """The neck's expected ``in_channels`` attribute and config value."""
    if isinstance(neck.in_channels, int):  # necks that read the last map
        return channels[-1], channels[-1]
    if type(neck).__name__ in COARSE_FIRST_NECKS:
        return channels[::-1], channels[::-1]
    return channels, channels


def _expected_head_channels(head: nn.Module, channels: List[int],
                            prefix: str) -> Tuple[Channels, Channels]:
    """The ``in_channels`` attribute and config value an mmseg decode head
    needs for its ``in_index`` (one map, several, or several concatenated:
    then the attribute is their sum)."""
    index = head.in_index
    indices = [index] if isinstance(index, int) else list(index)
    if not all(-len(channels) <= i < len(channels) for i in indices):
        raise ValueError(
            f'{prefix}.in_index={index!r} selects maps '
            f'that the backbone does not give: it gives {len(channels)} '
            f'(channels {channels}).')
    selected = [channels[i] for i in indices]
    if isinstance(index, int):
        return selected[0], selected[0]
    if getattr(head, 'input_transform', None) == 'resize_concat':
        return sum(selected), selected
    return selected, selected


def _consumers(model: nn.Module) -> List[tuple]:
    """(module, config path) pairs that read the backbone's maps."""
    neck = getattr(model, 'neck', None)
    if isinstance(neck, nn.Sequential):
        neck = neck[0]
    if neck is not None:
        return [(neck, 'model.neck')]
    found = []
    for name in ('decode_head', 'auxiliary_head'):
        heads = getattr(model, name, None)
        if isinstance(heads, nn.ModuleList):
            found += [(h, f'model.{name}.{i}') for i, h in enumerate(heads)]
        elif heads is not None:
            found.append((heads, f'model.{name}'))
    return [(m, prefix) for m, prefix in found if hasattr(m, 'in_index')]


def check_backbone_channels(model: nn.Module) -> None:
    """Raise if the modules reading an EfficientViT backbone's maps were
    built for other channels; models with another backbone pass unchecked.

    Args:
        model (nn.Module): A built mmdet or mmseg model (model wrappers
            such as DDP are looked through).

    Raises:
        ValueError: naming the backbone's channels and the config option
            to set.
    """
    model = getattr(model, 'module', model)
    backbone: Optional[nn.Module] = getattr(model, 'backbone', None)
    if not isinstance(backbone, EfficientViT):
        return
    channels = list(backbone.out_channels)
    for consumer, prefix in _consumers(model):
        actual = getattr(consumer, 'in_channels', None)
        if actual is None:
            continue
        if prefix == 'model.neck':
            expected, to_set = _expected_neck_channels(consumer, channels)
        else:
            expected, to_set = _expected_head_channels(
                consumer, channels, prefix)
        option = f'{prefix}.in_channels'
        if _as_list(actual) != _as_list(expected):
            raise ValueError(
                f'{type(consumer).__name__} was built for in_channels='
                f'{_as_list(actual)}, but the backbone EfficientViT '
                f'(arch={backbone.arch!r}) gives {len(channels)} maps with '
                f'channels {channels} (strides {backbone.out_strides}); set '
                f'{option}={to_set} in the config (or pass '
                f'--cfg-options "{option}={to_set}"), or change '
                'the backbone\'s out_indices / embed_out_strides.')


def _as_list(value: Union[int, Sequence[int]]) -> Union[int, List[int]]:
    return value if isinstance(value, int) else list(value)
