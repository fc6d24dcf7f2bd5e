"""Every detection config: the official recipe, consistent strides, and a
forward + loss + backward step on small images (pretrained download off)."""
import glob
import os.path as osp
import re

import pytest
import torch
from mmengine.config import Config

from reference import EMBED_DIMS, OFFICIAL_WEIGHTS

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
OFFICIAL = sorted(
    glob.glob(osp.join(REPO_ROOT, 'configs', 'retinanet',
                       '*efficientvit-m?_fpn_1x_coco.py')) +
    glob.glob(osp.join(REPO_ROOT, 'configs', 'mask_rcnn', '*.py')))
EXAMPLE = osp.join(REPO_ROOT, 'configs', 'examples',
                   'faster-rcnn_efficientvit-m0_fpn_1x_coco.py')
# Not the official recipe: RetinaNet-M0 with a 128-channel neck and head.
LIGHT_HEAD = osp.join(REPO_ROOT, 'configs', 'retinanet',
                      'retinanet_efficientvit-m0_fpn-128_1x_coco.py')


def _name(path):
    return osp.splitext(osp.basename(path))[0]


def test_light_head_is_the_m0_recipe_at_128_channels():
    light, m0 = Config.fromfile(LIGHT_HEAD), Config.fromfile(
        LIGHT_HEAD.replace('_fpn-128_', '_fpn_'))
    assert (light.model.neck.out_channels, light.model.bbox_head.in_channels,
            light.model.bbox_head.feat_channels) == (128, 128, 128)
    assert m0.model.neck.out_channels == 256
    assert light.model.backbone == m0.model.backbone
    assert light.optim_wrapper == m0.optim_wrapper
    assert light.param_scheduler == m0.param_scheduler


@pytest.mark.parametrize('path', OFFICIAL, ids=_name)
def test_official_recipe(path):
    cfg = Config.fromfile(path)
    arch = re.search(r'efficientvit-(m\d)', path).group(1)
    backbone, neck = cfg.model.backbone, cfg.model.neck
    assert backbone.type == 'EfficientViT' and backbone.arch == arch
    assert backbone.init_cfg == dict(type='Pretrained',
                                     checkpoint=OFFICIAL_WEIGHTS[arch])
    assert backbone.frozen_stages == -1 and backbone.norm_eval
    assert neck.type == 'EfficientViTFPN'
    assert neck.in_channels == EMBED_DIMS[arch]
    assert neck.num_outs == 5 and neck.out_channels == 256
    retina = _name(path).startswith('retinanet')
    assert neck.num_extra_trans_convs == (1 if retina else 2)
    optimizer = cfg.optim_wrapper.optimizer
    assert (optimizer.type, optimizer.lr, optimizer.weight_decay) == \
        ('AdamW', 1e-4, 0.05)
    assert cfg.optim_wrapper.paramwise_cfg.custom_keys == {
        'attention_biases': dict(decay_mult=0.)
    }
    warmup, steps = cfg.param_scheduler
    assert (warmup.type, warmup.start_factor, warmup.end,
            warmup.by_epoch) == ('LinearLR', 0.001, 500, False)
    assert (steps.type, steps.milestones) == ('MultiStepLR', [8, 11])
    assert cfg.train_cfg.max_epochs == 12
    assert cfg.train_dataloader.batch_size == 2  # x 8 GPUs = 16
    assert cfg.auto_scale_lr.base_batch_size == 16
    resize = [t for t in cfg.train_pipeline if t.type == 'Resize'][0]
    assert resize.scale == (1333, 800)
    assert cfg.custom_imports.imports == ['evit_mm']


def _build(cfg):
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    register_all_modules()
    cfg.model.backbone.init_cfg = None
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model


def _step(model, with_mask):
    from mmdet.testing import demo_mm_inputs
    packed = demo_mm_inputs(
        2, [(3, 96, 128), (3, 128, 80)], num_items=[3, 2], num_classes=3,
        with_mask=with_mask)
    model.train()
    data = model.data_preprocessor(packed, True)
    losses = model.loss(data['inputs'], data['data_samples'])
    total, _ = model.parse_losses(losses)
    assert torch.isfinite(total) and total > 0
    total.backward()
    assert model.backbone.patch_embed[0].conv.weight.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        results = model.predict(data['inputs'], data['data_samples'])
    assert len(results) == 2
    assert results[0].pred_instances.bboxes.shape[1] == 4
    if with_mask:
        assert 'masks' in results[0].pred_instances


@pytest.mark.parametrize(
    'path', [p for p in OFFICIAL if 'm0' in p] + [EXAMPLE, LIGHT_HEAD],
    ids=_name)
def test_m0_and_example_step(path):
    _step(_build(Config.fromfile(path)), 'mask' in path)


@pytest.mark.slow
@pytest.mark.parametrize(
    'path', [p for p in OFFICIAL if 'm0' not in p], ids=_name)
def test_other_archs_step(path):
    _step(_build(Config.fromfile(path)), 'mask' in path)


@pytest.mark.parametrize('path', OFFICIAL + [EXAMPLE, LIGHT_HEAD], ids=_name)
def test_neck_strides_match_heads(path):
    """The pyramid the model computes has the strides its anchor generator
    (and RoI extractors) assume."""
    cfg = Config.fromfile(path)
    cfg.model.neck.out_channels = 8  # shapes only
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    register_all_modules()
    backbone = MODELS.build(dict(cfg.model.backbone, init_cfg=None)).eval()
    neck = MODELS.build(cfg.model.neck).eval()
    with torch.no_grad():
        feats = neck(backbone(torch.zeros(1, 3, 512, 512)))
    strides = [512 // f.shape[-1] for f in feats]
    head = cfg.model.get('bbox_head') or cfg.model.rpn_head
    assert strides == list(head.anchor_generator.strides)
    if 'roi_head' in cfg.model:
        for extractor in ('bbox_roi_extractor', 'mask_roi_extractor'):
            if extractor in cfg.model.roi_head:
                assert list(cfg.model.roi_head[extractor]
                            .featmap_strides) == strides[:4]


def test_no_weight_decay_on_attention_biases():
    from mmengine.optim import build_optim_wrapper
    cfg = Config.fromfile(OFFICIAL[0])
    model = _build(cfg)
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    names = {id(p): n for n, p in model.named_parameters()}
    decays = {}
    for group in wrapper.optimizer.param_groups:
        for param in group['params']:
            decays[names[id(param)]] = group['weight_decay']
    biases = [n for n in decays if n.endswith('attention_biases')]
    assert len(biases) == 6  # one per block of M0 (1 + 2 + 3)
    assert all(decays[n] == 0 for n in biases)
    assert decays['backbone.patch_embed.0.conv.weight'] == 0.05


RTMDET = sorted(glob.glob(osp.join(REPO_ROOT, 'configs', 'rtmdet', '*.py')))
RTMDET_QUICKSTART = osp.join(REPO_ROOT, 'configs', 'quickstart',
                             'rtmdet_efficientvit-m0_synthetic.py')


def _stock_rtmdet(name: str) -> Config:
    import mmdet
    return Config.fromfile(
        osp.join(osp.dirname(mmdet.__file__), '.mim', 'configs', 'rtmdet',
                 name))


def _unscoped(value):
    """``value`` without the ``_scope_`` keys that inheriting an
    ``mmdet::`` base adds."""
    if isinstance(value, dict):
        return {k: _unscoped(v) for k, v in value.items() if k != '_scope_'}
    if isinstance(value, (list, tuple)):
        return [_unscoped(v) for v in value]
    return value


@pytest.mark.parametrize('path', RTMDET, ids=_name)
def test_rtmdet_is_the_tiny_recipe_with_efficientvit(path):
    """mmdet's RTMDet(-Ins)-tiny config with only the backbone, its
    channels and strides, the ImageNet normalisation and the weight decay
    of the attention biases changed."""
    cfg = Config.fromfile(path)
    ins = _name(path).startswith('rtmdet-ins')
    stock = _stock_rtmdet(('rtmdet-ins' if ins else 'rtmdet') +
                          '_tiny_8xb32-300e_coco.py')
    arch = re.search(r'efficientvit-(m\d)', path).group(1)
    dims = EMBED_DIMS[arch]
    backbone = cfg.model.backbone
    assert backbone.type == 'EfficientViT' and backbone.arch == arch
    assert backbone.init_cfg == dict(type='Pretrained',
                                     checkpoint=OFFICIAL_WEIGHTS[arch])
    assert backbone.embed_out_strides == (8, )
    assert backbone.out_indices == (0, 1)
    assert cfg.model.neck == dict(stock.model.neck,
                                  in_channels=[dims[0] // 2, *dims[:2]])
    head = cfg.model.bbox_head
    assert head == stock.model.bbox_head
    assert cfg.model.data_preprocessor == dict(
        stock.model.data_preprocessor, mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375], bgr_to_rgb=True, pad_size_divisor=32,
        **(dict(pad_mask=True) if ins else {}))
    for key in ('train_pipeline', 'train_pipeline_stage2', 'test_pipeline',
                'train_dataloader', 'val_dataloader', 'param_scheduler',
                'train_cfg', 'custom_hooks', 'default_hooks'):
        assert _unscoped(cfg[key]) == _unscoped(stock[key]), key
    assert cfg.optim_wrapper.optimizer == stock.optim_wrapper.optimizer
    assert cfg.optim_wrapper.paramwise_cfg == dict(
        stock.optim_wrapper.paramwise_cfg,
        custom_keys={'attention_biases': dict(decay_mult=0.)})


@pytest.mark.parametrize(
    'path', [p for p in RTMDET if 'm0' in p] + [RTMDET_QUICKSTART],
    ids=_name)
def test_rtmdet_step(path):
    _step(_build(Config.fromfile(path)), 'ins' in _name(path))
