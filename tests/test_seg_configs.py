"""Every segmentation config: the stated recipe, and a loss step (forward,
backward) and a predict step on small images, pretrained download off."""
import os.path as osp
import re

import pytest
import torch

from reference import EMBED_DIMS, OFFICIAL_WEIGHTS
from seg_helpers import (QUICKSTART, SEGFORMER, SEGFORMER_PEER_QUICKSTART,
                         SEGFORMER_QUICKSTART, SEM_FPN, UPERNET,
                         build_segmentor, load_config)


def _name(path):
    return osp.splitext(osp.basename(path))[0]


def _arch(path):
    return re.search(r'efficientvit-(m\d)', path).group(1)


def test_every_arch_has_both_models():
    assert [_name(p) for p in SEM_FPN] == [
        f'fpn_efficientvit-{a}_4xb8-40k_ade20k-512x512' for a in EMBED_DIMS
    ]
    assert [_name(p) for p in UPERNET] == [
        f'upernet_efficientvit-{a}_4xb4-160k_ade20k-512x512'
        for a in EMBED_DIMS
    ]
    assert [_name(p) for p in SEGFORMER] == [
        f'segformer_efficientvit-{a}_8xb2-160k_ade20k-512x512'
        for a in EMBED_DIMS
    ]


def _check_common(cfg, arch):
    assert cfg.custom_imports.imports == ['evit_mm']
    assert cfg.default_scope == 'mmseg'
    model = cfg.model
    assert model.type == 'EncoderDecoder' and model.pretrained is None
    backbone, neck = model.backbone, model.neck
    assert backbone.type == 'EfficientViT' and backbone.arch == arch
    assert backbone.init_cfg == dict(type='Pretrained',
                                     checkpoint=OFFICIAL_WEIGHTS[arch])
    assert backbone.out_indices == (0, 1, 2) and backbone.window_size == 7
    assert neck.type == 'EfficientViTFPN'
    assert neck.in_channels == EMBED_DIMS[arch]
    assert (neck.num_outs, neck.num_extra_trans_convs,
            neck.num_backbone_outs) == (4, 2, 2)
    assert model.decode_head.num_classes == 150
    assert model.data_preprocessor.size == (512, 512)
    assert cfg.train_dataloader.dataset.type == 'ADE20KDataset'
    crop = [t for t in cfg.train_pipeline if t.type == 'RandomCrop'][0]
    assert crop.crop_size == (512, 512)
    for pipeline in (cfg.train_pipeline, cfg.test_pipeline):
        load = [t for t in pipeline if t.type == 'LoadAnnotations'][0]
        assert load.reduce_zero_label
    assert model.test_cfg.mode == 'whole'


@pytest.mark.parametrize('path', SEM_FPN, ids=_name)
def test_semantic_fpn_recipe(path):
    """PVT / PoolFormer: 40k iterations, batch 32, AdamW 2e-4, wd 1e-4,
    poly 0.9."""
    cfg = load_config(path)
    _check_common(cfg, _arch(path))
    head = cfg.model.decode_head
    assert head.type == 'FPNHead' and head.in_channels == [256] * 4
    assert 'auxiliary_head' not in cfg.model
    optimizer = cfg.optim_wrapper.optimizer
    assert (optimizer.type, optimizer.lr, optimizer.weight_decay) == \
        ('AdamW', 2e-4, 1e-4)
    poly, = cfg.param_scheduler
    assert (poly.type, poly.power, poly.eta_min, poly.begin, poly.end,
            poly.by_epoch) == ('PolyLR', 0.9, 0., 0, 40000, False)
    assert cfg.train_cfg.max_iters == 40000
    assert cfg.train_dataloader.batch_size == 8  # x 4 GPUs
    assert cfg.auto_scale_lr.base_batch_size == 32


@pytest.mark.parametrize('path', UPERNET, ids=_name)
def test_upernet_recipe(path):
    """Swin's: 160k iterations, batch 16, AdamW 6e-5, betas (0.9, 0.999),
    wd 0.01, 1500 warm-up iterations then poly 1.0."""
    cfg = load_config(path)
    _check_common(cfg, _arch(path))
    head, aux = cfg.model.decode_head, cfg.model.auxiliary_head
    assert head.type == 'UPerHead' and head.in_channels == [256] * 4
    assert (aux.type, aux.in_channels, aux.in_index, aux.num_classes) == \
        ('FCNHead', 256, 2, 150)
    optimizer = cfg.optim_wrapper.optimizer
    assert (optimizer.type, optimizer.lr, optimizer.betas,
            optimizer.weight_decay) == ('AdamW', 6e-5, (0.9, 0.999), 0.01)
    warmup, poly = cfg.param_scheduler
    assert (warmup.type, warmup.begin, warmup.end, warmup.by_epoch) == \
        ('LinearLR', 0, 1500, False)
    assert (poly.type, poly.power, poly.eta_min, poly.begin, poly.end,
            poly.by_epoch) == ('PolyLR', 1.0, 0., 1500, 160000, False)
    assert cfg.train_cfg.max_iters == 160000
    assert cfg.train_dataloader.batch_size == 4  # x 4 GPUs
    assert cfg.auto_scale_lr.base_batch_size == 16


def _unscoped(value):
    """``value`` without the ``_scope_`` keys that mmengine adds to what a
    config inherits from an ``mmseg::`` base."""
    if isinstance(value, dict):
        return {k: _unscoped(v) for k, v in value.items() if k != '_scope_'}
    if isinstance(value, (list, tuple)):
        return type(value)(_unscoped(v) for v in value)
    return value


def _stock_segformer_b0():
    """mmseg's own SegFormer-B0 ADE20K config, as installed."""
    import mmseg
    return load_config(
        osp.join(osp.dirname(mmseg.__file__), '.mim', 'configs', 'segformer',
                 'segformer_mit-b0_8xb2-160k_ade20k-512x512.py'))


@pytest.mark.parametrize('path', SEGFORMER, ids=_name)
def test_segformer_recipe_is_segformer_b0s(path):
    """Everything but the backbone (and the head's inputs) equals mmseg's
    SegFormer-B0 config: data, batch 2 x 8, schedule, optimizer, head."""
    from mmseg.registry import MODELS
    cfg, stock = load_config(path), _stock_segformer_b0()
    arch = _arch(path)
    assert cfg.custom_imports.imports == ['evit_mm']
    backbone = cfg.model.backbone
    assert (backbone.type, backbone.arch, backbone.window_size,
            backbone.norm_eval) == ('EfficientViT', arch, 7, True)
    assert backbone.init_cfg == dict(type='Pretrained',
                                     checkpoint=OFFICIAL_WEIGHTS[arch])
    assert 'neck' not in cfg.model
    head, stock_head = _unscoped(cfg.model.decode_head), _unscoped(
        stock.model.decode_head)
    assert {k: v for k, v in head.items()
            if k not in ('in_channels', 'in_index')} == {
                k: v for k, v in stock_head.items()
                if k not in ('in_channels', 'in_index')}
    assert head['type'] == 'SegformerHead' and head['num_classes'] == 150
    built = MODELS.build(dict(backbone, init_cfg=None))
    assert head['in_channels'] == built.out_channels
    assert head['in_index'] == list(range(len(built.out_channels)))
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader',
                'train_cfg', 'val_cfg', 'param_scheduler', 'val_evaluator'):
        assert _unscoped(cfg[key]) == _unscoped(stock[key]), key
    for key in ('data_preprocessor', 'test_cfg'):
        assert _unscoped(cfg.model[key]) == _unscoped(stock.model[key]), key
    assert _unscoped(cfg.optim_wrapper.optimizer) == _unscoped(
        stock.optim_wrapper.optimizer)
    assert cfg.train_dataloader.batch_size == 2  # x 8 GPUs
    assert cfg.auto_scale_lr.base_batch_size == 16


def _param_groups(path):
    """``{parameter name: (lr, weight decay)}`` of the config's
    optimizer."""
    from mmengine.optim import build_optim_wrapper
    cfg = load_config(path)
    model = build_segmentor(path)
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    names = {id(p): n for n, p in model.named_parameters()}
    return {
        names[id(param)]: (group['lr'], group['weight_decay'])
        for group in wrapper.optimizer.param_groups
        for param in group['params']
    }


def _weight_decays(path):
    return {name: decay for name, (_, decay) in _param_groups(path).items()}


def test_upernet_no_decay_on_norms_and_attention_biases():
    decays = _weight_decays(UPERNET[0])
    biases = [n for n in decays if n.endswith('attention_biases')]
    assert len(biases) == 6  # one per block of M0 (1 + 2 + 3)
    norms = [n for n in decays if re.search(r'\.bn\.(weight|bias)$', n)]
    assert any(n.startswith('backbone.') for n in norms)
    assert any(n.startswith('decode_head.') for n in norms)
    assert all(decays[n] == 0 for n in biases + norms)
    for name in ('backbone.patch_embed.0.conv.weight',
                 'neck.trans_convs.0.conv.weight',
                 'decode_head.fpn_bottleneck.conv.weight'):
        assert decays[name] == 0.01


def test_semantic_fpn_no_decay_on_attention_biases_only():
    decays = _weight_decays(SEM_FPN[0])
    biases = [n for n in decays if n.endswith('attention_biases')]
    assert len(biases) == 6 and all(decays[n] == 0 for n in biases)
    assert decays['backbone.patch_embed.0.bn.weight'] == 1e-4
    assert decays['decode_head.conv_seg.weight'] == 1e-4


def test_segformer_head_lr_and_no_decay_on_norms_and_attention_biases():
    """SegFormer-B0's rule: the head at 10x the LR (6e-4), the backbone at
    6e-5; no decay on the position/bias tables and the backbone's norms."""
    groups = _param_groups(SEGFORMER[0])
    head = [n for n in groups if n.startswith('decode_head.')]
    backbone = [n for n in groups if n.startswith('backbone.')]
    assert len(head) + len(backbone) == len(groups) and head and backbone
    assert all(groups[n][0] == pytest.approx(6e-4) for n in head)
    assert all(groups[n][0] == pytest.approx(6e-5) for n in backbone)
    biases = [n for n in backbone if n.endswith('attention_biases')]
    norms = [n for n in backbone if re.search(r'\.bn\.(weight|bias)$', n)]
    assert len(biases) == 6 and norms
    assert all(groups[n][1] == 0 for n in biases + norms)
    others = set(backbone) - set(biases) - set(norms)
    assert others and all(groups[n][1] == 0.01 for n in others)
    assert all(groups[n][1] == 0.01 for n in head)  # as mmseg's B0


def _step(model):
    from mmseg.structures import SegDataSample
    from mmengine.structures import PixelData
    sizes = [(64, 96), (56, 72)]
    inputs = [torch.randint(0, 256, (3, h, w), dtype=torch.uint8)
              for h, w in sizes]
    samples = []
    for h, w in sizes:
        sample = SegDataSample(metainfo=dict(img_shape=(h, w),
                                             ori_shape=(h, w)))
        label = torch.randint(0, model.decode_head.num_classes, (1, h, w))
        label[:, :8] = 255  # ignored pixels
        sample.gt_sem_seg = PixelData(data=label)
        samples.append(sample)
    model.train()
    model.data_preprocessor.size = sizes[0]  # not to 512x512: keep it fast
    data = model.data_preprocessor(dict(inputs=inputs, data_samples=samples),
                                   True)
    losses = model.loss(data['inputs'], data['data_samples'])
    total, _ = model.parse_losses(losses)
    assert torch.isfinite(total) and total > 0
    total.backward()
    unused = [n for n, p in model.named_parameters()
              if p.requires_grad and p.grad is None]
    assert unused == []  # DDP without find_unused_parameters works
    model.eval()
    for image, sample, (h, w) in zip(inputs, samples, sizes):
        with torch.no_grad():
            result, = model.test_step(dict(
                inputs=[image],
                data_samples=[SegDataSample(metainfo=sample.metainfo)]))
        assert result.pred_sem_seg.data.shape == (1, h, w)
        assert result.seg_logits.data.shape == (
            model.decode_head.num_classes, h, w)


@pytest.mark.parametrize(
    'path', [p for p in SEM_FPN + UPERNET + SEGFORMER if 'm0' in p] +
    [QUICKSTART, SEGFORMER_QUICKSTART, SEGFORMER_PEER_QUICKSTART],
    ids=_name)
def test_m0_and_quickstart_step(path):
    _step(build_segmentor(path))


@pytest.mark.slow
@pytest.mark.parametrize(
    'path', [p for p in SEM_FPN + UPERNET + SEGFORMER if 'm0' not in p],
    ids=_name)
def test_other_archs_step(path):
    _step(build_segmentor(path))


@pytest.mark.parametrize('path',
                         [SEGFORMER_QUICKSTART, SEGFORMER_PEER_QUICKSTART],
                         ids=_name)
def test_segformer_quickstarts_share_the_quickstart_recipe(path):
    """One recipe for the quickstart segmentors (compare_backbones.sh):
    everything but the model equals the Semantic FPN quickstart; the two
    SegFormers differ only in the backbone and the head's inputs."""
    cfg, fpn = load_config(path), load_config(QUICKSTART)
    assert {k: v for k, v in cfg.items() if k != 'model'} == {
        k: v for k, v in fpn.items() if k != 'model'}
    assert cfg.model.data_preprocessor == fpn.model.data_preprocessor
    assert cfg.model.get('neck') is None
    ours = load_config(SEGFORMER_QUICKSTART).model.decode_head
    head = cfg.model.decode_head
    assert head.type == 'SegformerHead'
    assert {k: v for k, v in head.items()
            if k not in ('in_channels', 'in_index')} == {
                k: v for k, v in ours.items()
                if k not in ('in_channels', 'in_index')}
    model = build_segmentor(path).eval()
    with torch.no_grad():
        levels = model.extract_feat(torch.randn(1, 3, 64, 64))
    assert head.in_channels == [level.shape[1] for level in levels]
    assert head.in_index == list(range(len(levels)))
