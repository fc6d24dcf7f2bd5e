"""Every classification config builds and runs a training step (loss,
backward, optimizer step) and a predict step on small images, with downloads
off; the ImageNet configs carry the official recipe."""
import glob
import os.path as osp

import pytest
import torch

pytest.importorskip('mmpretrain')

from mmengine.config import Config  # noqa: E402
from mmengine.optim import build_optim_wrapper  # noqa: E402
from mmpretrain.registry import MODELS  # noqa: E402
from mmpretrain.structures import DataSample  # noqa: E402

import evit_mm  # noqa: E402,F401

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = sorted(
    glob.glob(osp.join(REPO, 'configs', 'efficientvit', '*.py')) +
    glob.glob(osp.join(REPO, 'configs', 'quickstart', 'efficientvit*.py')))
IMAGENET_M0 = osp.join(REPO, 'configs', 'efficientvit',
                       'efficientvit-m0_8xb256_in1k.py')
WIDTHS = dict(m0=192, m1=192, m2=224, m3=320, m4=384, m5=384)

# Every test builds in mmpretrain's scope, whatever scope others left.
pytestmark = pytest.mark.usefixtures('mmpretrain_scope')


def load_config(path: str) -> Config:
    """The config as a runner would use it, with nothing downloaded: the
    top-level data preprocessor merged into the model, a tiny teacher."""
    cfg = Config.fromfile(path)
    cfg.model.setdefault('data_preprocessor', cfg.get('data_preprocessor'))
    if cfg.model.type == 'DistillImageClassifier':
        cfg.model.teacher = dict(
            type='TimmClassifier',
            model_name='test_resnet',
            num_classes=cfg.model.head.num_classes)
        cfg.model.teacher_checkpoint = None
    return cfg


def test_all_configs_found():
    names = {osp.basename(p) for p in CONFIGS}
    assert {f'efficientvit-m{i}_8xb256_in1k.py' for i in range(6)} <= names
    assert 'efficientvit-m4-distilled_8xb256_in1k.py' in names
    assert 'efficientvit-m0_synthetic.py' in names


@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_config_train_and_predict_step(path):
    cfg = load_config(path)
    model = MODELS.build(cfg.model)
    arch = cfg.model.backbone.arch
    assert model.head.in_channels == WIDTHS[arch] == \
        model.backbone.embed_dims[-1]
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    num_classes = cfg.model.head.num_classes
    data = dict(
        inputs=[
            torch.randint(0, 256, (3, 64, 64), dtype=torch.uint8)
            for _ in range(2)
        ],
        data_samples=[
            DataSample().set_gt_label(label) for label in (0, num_classes - 1)
        ])
    before = model.head.classifier.linear.weight.detach().clone()
    model.train()
    log_vars = model.train_step(data, optim_wrapper)
    assert torch.isfinite(log_vars['loss'])
    assert not torch.equal(before, model.head.classifier.linear.weight)
    if cfg.model.type == 'DistillImageClassifier':
        assert 'loss_distill' in log_vars
    model.eval()
    predictions = model.val_step(data)
    assert len(predictions) == 2
    for sample in predictions:
        assert sample.pred_score.shape == (num_classes, )
        torch.testing.assert_close(sample.pred_score.sum(), torch.tensor(1.))


def test_imagenet_recipe():
    """The official recipe (microsoft/Cream EfficientViT/classification
    main.py defaults): AdamW, lr 1e-3 per 512 images, weight decay 0.025
    except attention biases, norms and biases, AGC 0.02, 5 warm-up epochs
    then cosine to 1e-5 over 300 epochs."""
    cfg = load_config(IMAGENET_M0)
    model = MODELS.build(cfg.model)
    assert dict(type='AdaptiveGradClipHook', clip_factor=0.02) in \
        cfg.custom_hooks
    optimizer = build_optim_wrapper(model, cfg.optim_wrapper).optimizer
    assert type(optimizer).__name__ == 'AdamW'
    decay = {}
    for group in optimizer.param_groups:
        for param in group['params']:
            decay[id(param)] = group['weight_decay']
            assert group['lr'] == pytest.approx(1e-3 * 2048 / 512)
    names = dict(model.named_parameters())
    for name, param in names.items():
        no_decay = name.endswith(('attention_biases', '.bias')) or \
            '.bn.' in name
        assert decay[id(param)] == (0. if no_decay else 0.025), name
    assert any(n.endswith('attention_biases') for n in names)

    warmup, cosine = cfg.param_scheduler
    assert warmup.end == 5 and warmup.start_factor * 4e-3 == \
        pytest.approx(1e-6)
    assert cosine.type == 'CosineAnnealingLR' and cosine.eta_min == 1e-5
    assert cfg.train_cfg.max_epochs == 300
    assert cfg.auto_scale_lr.base_batch_size == 2048 == \
        8 * cfg.train_dataloader.batch_size


def test_imagenet_data_pipelines():
    cfg = load_config(IMAGENET_M0)
    train = {t['type']: t for t in cfg.train_dataloader.dataset.pipeline}
    assert train['RandomResizedCrop']['scale'] == 224
    assert train['RandAugment']['policies'] == 'timm_increasing'
    assert (train['RandAugment']['magnitude_level'],
            train['RandAugment']['magnitude_std'],
            train['RandAugment']['num_policies']) == (9, 0.5, 2)
    assert train['RandomErasing']['erase_prob'] == 0.25
    assert cfg.train_dataloader.sampler.type == 'RepeatAugSampler'
    test = {t['type']: t for t in cfg.test_dataloader.dataset.pipeline}
    assert (test['ResizeEdge']['scale'], test['ResizeEdge']['edge'],
            test['ResizeEdge']['interpolation']) == (256, 'short', 'bicubic')
    assert test['CenterCrop']['crop_size'] == 224
    augments = {a['type']: a['alpha'] for a in cfg.model.train_cfg.augments}
    assert augments == {'Mixup': 0.8, 'CutMix': 1.0}
    assert cfg.model.head.loss.label_smooth_val == 0.1
    preprocessor = cfg.model.data_preprocessor
    assert preprocessor.mean == [123.675, 116.28, 103.53]
    assert preprocessor.std == [58.395, 57.12, 57.375]
    assert preprocessor.to_rgb
