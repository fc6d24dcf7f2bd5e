"""Every segmentation config: the stated recipe, and a loss step (forward,
backward) and a predict step on small images, pretrained download off."""
import os.path as osp
import re

import pytest
import torch

from reference import EMBED_DIMS, OFFICIAL_WEIGHTS
from seg_helpers import (QUICKSTART, SEM_FPN, UPERNET, build_segmentor,
                         load_config)


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


def _weight_decays(path):
    from mmengine.optim import build_optim_wrapper
    cfg = load_config(path)
    model = build_segmentor(path)
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    names = {id(p): n for n, p in model.named_parameters()}
    return {
        names[id(param)]: group['weight_decay']
        for group in wrapper.optimizer.param_groups
        for param in group['params']
    }


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
    'path', [p for p in SEM_FPN + UPERNET if 'm0' in p] + [QUICKSTART],
    ids=_name)
def test_m0_and_quickstart_step(path):
    _step(build_segmentor(path))


@pytest.mark.slow
@pytest.mark.parametrize('path',
                         [p for p in SEM_FPN + UPERNET if 'm0' not in p],
                         ids=_name)
def test_other_archs_step(path):
    _step(build_segmentor(path))
