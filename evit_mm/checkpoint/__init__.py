"""Reading every EfficientViT checkpoint layout safely, in one place.

Layouts understood:

* ``official``: microsoft/Cream releases, ``{'model': state_dict}`` with
  names like ``blocks2.1.conv1.c.weight`` and ``head.l.weight``;
* ``official_detector``: the COCO releases of its downstream code (mmdet
  2.x files): those names under ``backbone.``, its ``EfficientViTFPN``'s
  (``extra_trans_convs``, ``extra_fpn_convs``) under ``neck.``;
* ``timm``: ``efficientvit_m*`` of pytorch-image-models (``.pth`` or
  ``.safetensors``), names like ``stages.1.downsample.patchmerge.conv1``;
* ``evit_mm``: this package's own names, bare or inside a whole model
  (``backbone.`` / ``head.`` prefixes, mmengine ``{'state_dict': ...}``).

Files are read from anywhere mmengine's loaders reach, with
``torch.load(weights_only=True)`` plus an explicit allow-list of the plain
types the OpenMMLab toolboxes store (:mod:`.safety`), so a file that
carries code cannot run it.

The package knows state dicts, not model classes: :mod:`.io` reads files,
:mod:`.convert` renames, fuses and resizes weights, :mod:`.loading` fits
them into a given module. The models import it, never the reverse.
"""
from .convert import (LAYOUT_NAMES, convert_official_fpn, convert_to_evit,
                      describe_checkpoint, detect_layout, fuse_state_dict,
                      guess_arch, resize_attention_biases)
from .io import (CheckpointError, StateDict, extract_state_dict,
                 read_checkpoint, register_safe_download_loaders,
                 register_safe_globals)
from .loading import (adapt_model_state_dict, backbone_load_pre_hook,
                      check_fit, check_loaded_part, fpn_load_pre_hook,
                      load_backbone_checkpoint)
from .safety import safe_globals

__all__ = [
    'CheckpointError', 'LAYOUT_NAMES', 'StateDict', 'adapt_model_state_dict',
    'backbone_load_pre_hook', 'check_fit', 'check_loaded_part',
    'convert_official_fpn', 'convert_to_evit', 'describe_checkpoint',
    'detect_layout', 'extract_state_dict', 'fpn_load_pre_hook',
    'fuse_state_dict', 'guess_arch', 'load_backbone_checkpoint',
    'read_checkpoint', 'register_safe_download_loaders',
    'register_safe_globals', 'resize_attention_biases', 'safe_globals'
]
