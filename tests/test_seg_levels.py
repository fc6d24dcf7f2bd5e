"""Segmentation feature levels and inference modes.

EfficientViT returns maps at strides 16, 32 and 64; Semantic FPN and UperNet
are built for four levels at strides 4, 8, 16 and 32. The neck of the
segmentation configs makes them (two transposed-conv levels, the stride-64
map feeding the top-down path only). These tests check the levels against an
independent reference (the full five-level neck), their strides at odd input
sizes, and whole-image and sliding-window inference at ADE20K's sizes.
"""
import math

import pytest
import torch
import torch.nn.functional as F

import seg_helpers
from evit_mm.models import EfficientViT, EfficientViTFPN

SEM_FPN, UPERNET = seg_helpers.SEM_FPN[0], seg_helpers.UPERNET[0]  # M0
SEG_NECK = dict(num_outs=4, num_extra_trans_convs=2, num_backbone_outs=2)
M0_DIMS = [64, 128, 192]


def _backbone_maps(size):
    height, width = size
    return [
        torch.randn(1, c, math.ceil(height / s), math.ceil(width / s))
        for c, s in zip(M0_DIMS, (16, 32, 64))
    ]


def test_levels_equal_the_full_neck_without_its_stride64_output():
    """Dropping the stride-64 output changes no other level."""
    full = EfficientViTFPN(M0_DIMS, 8, num_outs=5, num_extra_trans_convs=2)
    for param in full.parameters():
        torch.nn.init.normal_(param, std=0.2)
    seg = EfficientViTFPN(M0_DIMS, 8, **SEG_NECK)
    missing, unexpected = seg.load_state_dict(full.state_dict(), strict=False)
    assert missing == []
    assert sorted(unexpected) == ['fpn_convs.2.conv.bias',
                                  'fpn_convs.2.conv.weight']
    inputs = _backbone_maps((100, 140))
    with torch.no_grad():
        expected, got = full(inputs), seg(inputs)
    assert len(got) == 4
    for a, b in zip(got, expected[:4]):
        torch.testing.assert_close(a, b)


def test_stride64_map_reaches_every_level():
    neck = EfficientViTFPN(M0_DIMS, 8, **SEG_NECK)
    inputs = _backbone_maps((64, 96))
    inputs[2].requires_grad_(True)
    for level in neck(inputs):
        grad, = torch.autograd.grad(
            level.square().sum(), inputs[2], retain_graph=True)
        assert grad.abs().sum() > 0
    assert len(neck.fpn_convs) == 2  # no unused (DDP-breaking) parameters


@pytest.mark.parametrize('kwargs, message', [
    (dict(num_backbone_outs=0), 'num_backbone_outs=0'),
    (dict(num_backbone_outs=4), 'num_backbone_outs=4'),
    (dict(num_backbone_outs=2.0), 'num_backbone_outs=2.0'),
    (dict(num_backbone_outs=2, num_outs=5), 'num_outs=5 must be 4'),
    (dict(num_backbone_outs=2, num_outs=3), 'num_outs=3 is too small'),
])
def test_bad_num_backbone_outs_is_named(kwargs, message):
    args = dict(in_channels=M0_DIMS, out_channels=8, num_outs=4,
                num_extra_trans_convs=2)
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        EfficientViTFPN(**args)


@pytest.mark.parametrize('size', [(512, 512), (375, 500), (512, 683),
                                  (97, 131)])
def test_level_strides_at_odd_sizes(size):
    """Level i covers the image with cells of ``stride_i`` pixels: its size
    times the stride overshoots the image by less than one stride-32 cell
    (the backbone pads to whole stride-16 cells), and equals it exactly when
    the image is a multiple of 32."""
    backbone = EfficientViT('m0').eval()
    neck = EfficientViTFPN(M0_DIMS, 8, **SEG_NECK).eval()
    with torch.no_grad():
        levels = neck(backbone(torch.randn(1, 3, *size)))
    assert len(levels) == 4
    for level, stride in zip(levels, (4, 8, 16, 32)):
        for side, image_side in zip(level.shape[2:], size):
            assert 0 <= side * stride - image_side < 32
            if image_side % 32 == 0:
                assert side * stride == image_side
    for finer, coarser in zip(levels[:2], levels[1:3]):
        assert finer.shape[2:] == tuple(2 * s for s in coarser.shape[2:])


@pytest.mark.parametrize('path', [SEM_FPN, UPERNET],
                         ids=['sem_fpn', 'upernet'])
def test_decode_heads_see_their_design_strides(path):
    cfg = seg_helpers.load_config(path)
    model = seg_helpers.build_segmentor(path, width=16).eval()
    with torch.no_grad():
        levels = model.extract_feat(torch.randn(1, 3, 256, 256))
    strides = [256 // level.shape[-1] for level in levels]
    assert strides == [4, 8, 16, 32]
    head = cfg.model.decode_head
    if 'feature_strides' in head:
        assert list(head.feature_strides) == strides
    assert list(head.in_index) == [0, 1, 2, 3]
    assert [level.shape[1] for level in levels] == [16] * 4
    if 'auxiliary_head' in cfg.model:
        assert strides[cfg.model.auxiliary_head.in_index] == 16


@pytest.mark.parametrize(
    'path', [seg_helpers.SEGFORMER[0], seg_helpers.SEGFORMER_QUICKSTART],
    ids=['ade20k', 'quickstart'])
@pytest.mark.parametrize('size', [(256, 256), (200, 312)])
def test_segformer_head_reads_strides_8_to_64(path, size):
    """SegFormer's head reads the patch embedding's stride-8 map and the
    three stage maps, finest first, and predicts at stride 8: each level
    covers the image with its cells (exactly at multiples of 64)."""
    model = seg_helpers.build_segmentor(path, width=16).eval()
    with torch.no_grad():
        levels = model.extract_feat(torch.randn(1, 3, *size))
        logits = model.decode_head(levels)
    assert [level.shape[1] for level in levels] == \
        model.decode_head.in_channels
    for level, stride in zip(levels, (8, 16, 32, 64)):
        assert [math.ceil(side / stride) for side in size] == list(
            level.shape[2:])
    assert logits.shape[2:] == levels[0].shape[2:]


def _image(height, width):
    return torch.randint(0, 256, (3, height, width), dtype=torch.uint8)


def _predict(model, image, **test_cfg):
    from mmengine.config import ConfigDict
    from mmseg.structures import SegDataSample
    model.test_cfg = ConfigDict(test_cfg or dict(mode='whole'))
    shape = tuple(image.shape[1:])
    sample = SegDataSample(metainfo=dict(img_shape=shape, ori_shape=shape))
    with torch.no_grad():
        result, = model.test_step(dict(inputs=[image], data_samples=[sample]))
    return result


def _crop_logits(model, image, x1, x2):
    """Logits of the model on columns ``x1:x2`` of the image alone."""
    from mmseg.structures import SegDataSample
    data = model.data_preprocessor(
        dict(inputs=[image], data_samples=[SegDataSample()]), False)
    crop = data['inputs'][..., x1:x2]
    with torch.no_grad():
        return model.encode_decode(crop, [dict(img_shape=crop.shape[2:])])[0]


SLIDE = dict(mode='slide', crop_size=(512, 512), stride=(341, 341))


@pytest.mark.parametrize('size', [(512, 512), (375, 500)])
def test_whole_and_slide_agree_when_one_window_covers_the_image(size):
    image = _image(*size)
    model = seg_helpers.build_segmentor(SEM_FPN, width=16).eval()
    whole = _predict(model, image)
    slide = _predict(model, image, **SLIDE)
    for result in (whole, slide):
        assert result.seg_logits.data.shape == (150, *size)
        assert result.pred_sem_seg.data.shape == (1, *size)
        assert torch.isfinite(result.seg_logits.data).all()
    torch.testing.assert_close(slide.seg_logits.data, whole.seg_logits.data)


@pytest.mark.parametrize('path', [
    pytest.param(SEM_FPN, id='sem_fpn'),
    pytest.param(UPERNET, id='upernet', marks=pytest.mark.slow)
])
def test_slide_averages_overlapping_windows(path):
    """A 500x375 ADE image resized to 683x512 (the test pipeline's scale):
    two 512x512 windows, at columns 0-512 and 171-683."""
    torch.manual_seed(1)
    model = seg_helpers.build_segmentor(path, width=16).eval()
    image = _image(512, 683)
    left = _crop_logits(model, image, 0, 512)
    right = _crop_logits(model, image, 171, 683)
    windows = torch.ones(1, 512, 683)
    windows[:, :, 171:512] = 2
    expected = (F.pad(left, (0, 171)) + F.pad(right, (171, 0))) / windows
    result = _predict(model, image, **SLIDE)
    assert result.pred_sem_seg.data.shape == (1, 512, 683)
    torch.testing.assert_close(result.seg_logits.data, expected)
    whole = _predict(model, image).seg_logits.data
    assert whole.shape == expected.shape
    assert not torch.allclose(whole, expected)  # the modes really differ
