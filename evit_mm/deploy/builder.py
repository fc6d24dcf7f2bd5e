"""Building the model of any mmdet, mmseg or mmpretrain config for
inference, and a tensor-in, tensor-out view of it."""
from typing import Optional

import torch
import torch.nn as nn

from ..models.channel_check import check_backbone_channels


class TensorMode(nn.Module):
    """Wrap an mmengine ``BaseModel`` so that ``forward(x)`` returns its
    ``mode='tensor'`` output (e.g. an mmpretrain classifier's logits)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor):
        return self.model(x, mode='tensor')


def build_model(cfg) -> nn.Module:
    """Build ``cfg.model`` of a loaded mmdet, mmseg or mmpretrain config:
    its ``custom_imports`` imported, its ``default_scope`` registry used,
    the backbone's channels checked against the neck or head.

    Args:
        cfg (mmengine.Config): The config.

    Raises:
        ValueError: when the config has no ``model``.
    """
    from mmengine.registry import MODELS, init_default_scope
    from mmengine.utils import import_modules_from_strings

    if 'model' not in cfg:
        raise ValueError(f'{cfg.filename} defines no `model`.')
    if cfg.get('custom_imports'):
        import_modules_from_strings(**cfg.custom_imports)
    init_default_scope(cfg.get('default_scope', 'mmengine'))
    model = MODELS.build(cfg.model)
    check_backbone_channels(model)
    return model


def build_from_config(config: str,
                      checkpoint: Optional[str] = None,
                      cfg_options: Optional[dict] = None) -> nn.Module:
    """Build the ``model`` of an mmdet, mmseg or mmpretrain config
    (:func:`build_model`) and optionally load a checkpoint into it (read
    safely, as the tools do), in eval mode.

    Raises:
        ValueError: when the config has no ``model``.
    """
    from mmengine.config import Config
    from mmengine.runner import load_checkpoint

    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    model = build_model(cfg)
    if checkpoint is not None:
        load_checkpoint(model, checkpoint, map_location='cpu', strict=True)
    return model.eval()
