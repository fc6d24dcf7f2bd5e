"""Shared by the segmentation tests: the configs and the segmentors built
from them on CPU.

Parsing is cached: mmengine resolves every ``mmseg::`` base by reading all
of mmseg's metafiles (about 200 YAML files, seconds per base), so each
config file is parsed once and the YAML files are read once while parsing.
"""
import copy
import functools
import glob
import os.path as osp
from typing import Optional
from unittest import mock

from mmengine.config import Config
from mmengine.config import utils as config_utils

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
SEM_FPN = sorted(glob.glob(osp.join(REPO_ROOT, 'configs', 'sem_fpn', '*.py')))
UPERNET = sorted(glob.glob(osp.join(REPO_ROOT, 'configs', 'upernet', '*.py')))
SEGFORMER = sorted(
    glob.glob(osp.join(REPO_ROOT, 'configs', 'segformer', '*.py')))
QUICKSTART = osp.join(REPO_ROOT, 'configs', 'quickstart',
                      'fpn_efficientvit-m0_synthetic.py')
SEGFORMER_QUICKSTART = osp.join(REPO_ROOT, 'configs', 'quickstart',
                                'segformer_efficientvit-m0_synthetic.py')
SEGFORMER_PEER_QUICKSTART = osp.join(REPO_ROOT, 'configs', 'quickstart',
                                     'segformer_mit-b0_synthetic.py')


_load_metafile = functools.lru_cache(maxsize=None)(config_utils.load)


@functools.lru_cache(maxsize=None)
def _parsed(path: str) -> Config:
    with mock.patch.object(config_utils, 'load', _load_metafile):
        return Config.fromfile(path)


def load_config(path: str) -> Config:
    """A fresh copy of the config at ``path``."""
    return copy.deepcopy(_parsed(path))


def build_segmentor(path: str, width: Optional[int] = None):
    """The config's model, pretrained download off, SyncBN reverted to BN
    (as mmengine's runner does without distributed training), weights
    initialised. ``width`` sets the channels of the neck (if any) and
    heads."""
    from mmengine.model import revert_sync_batchnorm
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules
    register_all_modules()
    cfg = load_config(path).model
    cfg.backbone.init_cfg = None
    if width is not None:
        if cfg.get('neck'):
            cfg.neck.out_channels = width
            cfg.decode_head.in_channels = [width] * len(
                cfg.decode_head.in_channels)
        cfg.decode_head.channels = width
        if 'auxiliary_head' in cfg:
            cfg.auxiliary_head.in_channels = width
            cfg.auxiliary_head.channels = width
    model = revert_sync_batchnorm(MODELS.build(cfg))
    model.init_weights()
    return model
