"""The neck (or decode head) channels of a model are checked against an
EfficientViT backbone once the model is built: a stock config with only the
backbone swapped stops with the channels to set, before training."""
import functools
import os.path as osp
import re

import mmdet
import pytest
from mmengine.config import Config

from evit_mm.models.channel_check import check_backbone_channels
from tool_helpers import run_script

STOCK_RTMDET = 'mmdet::rtmdet/rtmdet_tiny_8xb32-300e_coco.py'
M0 = dict(type='EfficientViT', arch='m0')


@functools.lru_cache()
def _stock_model() -> Config:
    path = osp.join(osp.dirname(mmdet.__file__), '.mim', 'configs',
                    'rtmdet', 'rtmdet_tiny_8xb32-300e_coco.py')
    return Config.fromfile(path).model


def _detector(backbone, neck):
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    register_all_modules()
    cfg = _stock_model().copy()
    cfg.backbone, cfg.neck = backbone, neck
    return MODELS.build(cfg)


def _segmentor(**decode_head):
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules
    register_all_modules()
    head = dict(type='FCNHead', channels=8, num_convs=1, num_classes=3)
    return MODELS.build(
        dict(type='EncoderDecoder', backbone=M0,
             decode_head=dict(head, **decode_head)))


def test_stock_rtmdet_neck_with_efficientvit_is_refused():
    stock_neck = _stock_model().neck
    assert stock_neck.in_channels == [96, 192, 384]
    model = _detector(M0, stock_neck)
    message = ('CSPNeXtPAFPN was built for in_channels=[96, 192, 384], but '
               "the backbone EfficientViT (arch='m0') gives 3 maps with "
               'channels [64, 128, 192] (strides [16, 32, 64]); set '
               'model.neck.in_channels=[64, 128, 192]')
    with pytest.raises(ValueError, match=re.escape(message)):
        check_backbone_channels(model)


def test_matching_neck_passes_and_embed_maps_count():
    backbone = dict(M0, embed_out_strides=(8, ))
    neck = dict(_stock_model().neck,
                in_channels=[32, 64, 128, 192])
    check_backbone_channels(_detector(backbone, neck))
    neck['in_channels'] = [64, 128, 192]
    with pytest.raises(ValueError, match=re.escape(
            'set model.neck.in_channels=[32, 64, 128, 192]')):
        check_backbone_channels(_detector(backbone, neck))


def test_coarse_first_neck():
    """mmdet's YOLOV3Neck lists its in_channels coarsest first."""
    neck = dict(type='YOLOV3Neck', num_scales=3, in_channels=[192, 128, 64],
                out_channels=[32, 16, 8])
    check_backbone_channels(_detector(M0, neck))
    neck['in_channels'] = [1024, 512, 256]
    with pytest.raises(ValueError,
                       match=re.escape('in_channels=[192, 128, 64]')):
        check_backbone_channels(_detector(M0, neck))


def test_decode_head_without_neck():
    check_backbone_channels(_segmentor(in_channels=128, in_index=1))
    with pytest.raises(ValueError, match=re.escape(
            'set model.decode_head.in_channels=192')):
        check_backbone_channels(_segmentor(in_channels=2048, in_index=-1))
    with pytest.raises(ValueError, match=re.escape(
            'model.decode_head.in_index=[0, 3] selects maps that the '
            'backbone does not give: it gives 3')):
        check_backbone_channels(
            _segmentor(in_channels=[64, 256], in_index=[0, 3],
                       input_transform='resize_concat'))
    check_backbone_channels(
        _segmentor(in_channels=[64, 192], in_index=[0, 2],
                   input_transform='resize_concat'))
    with pytest.raises(ValueError, match=re.escape(
            'built for in_channels=128, but the backbone EfficientViT '
            "(arch='m0') gives 3 maps with channels [64, 128, 192] (strides "
            '[16, 32, 64]); set model.decode_head.in_channels=[64, 192]')):
        check_backbone_channels(
            _segmentor(in_channels=[64, 64], in_index=[0, 2],
                       input_transform='resize_concat'))


def test_other_backbones_are_not_checked():
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    register_all_modules()
    model = MODELS.build(_stock_model().copy())
    check_backbone_channels(model)


@pytest.mark.slow
def test_train_tool_stops_before_training(tmp_path):
    """tools/train.py on mmdet's stock RTMDet-tiny with only the backbone
    swapped: the message, not a convolution shape traceback, and no
    iteration run (no data exists, so training could not even start)."""
    config = tmp_path / 'swapped.py'
    config.write_text(
        f"_base_ = '{STOCK_RTMDET}'\n"
        "custom_imports = dict(imports=['evit_mm'])\n"
        "model = dict(backbone=dict(_delete_=True, type='EfficientViT', "
        "arch='m0'))\n")
    log = run_script('tools/train.py', config, '--no-image-check',
                     '--work-dir', tmp_path / 'work', returncode=1)
    assert ('set model.neck.in_channels=[64, 128, 192] in the config (or '
            'pass --cfg-options "model.neck.in_channels=[64, 128, 192]")'
            ) in log
    assert 'Epoch(train)' not in log and 'conv2d' not in log.lower()
