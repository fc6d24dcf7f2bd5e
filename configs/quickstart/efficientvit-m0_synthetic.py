# Quickstart: an EfficientViT-M0 classifier trained from scratch on the
# synthetic shapes (circle, square, triangle; ImageNet-style folders written
# by tools/dataset_converters/make_synthetic_data.py) in a few minutes on 2
# CPU cores. The ImageNet recipe at 64 px, without Mixup/CutMix and
# RandAugment, with a higher LR and a short schedule.
_base_ = '../efficientvit/efficientvit-m0_8xb256_in1k.py'

data_root = 'data/synthetic/imagenet'
metainfo = dict(classes=('circle', 'square', 'triangle'))
image_size = 64
max_epochs = 12

model = dict(
    head=dict(num_classes=3, topk=(1, 2)),
    # No Mixup/CutMix.
    train_cfg=None)
data_preprocessor = dict(num_classes=3)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='RandomResizedCrop',
        scale=image_size,
        crop_ratio_range=(0.6, 1.0),
        backend='pillow',
        interpolation='bicubic'),
    dict(
        type='RandomFlip',
        prob=[0.25, 0.25],
        direction=['horizontal', 'vertical']),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='Resize',
        scale=(image_size, image_size),
        backend='pillow',
        interpolation='bicubic'),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=32,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        _delete_=True,
        type='CustomDataset',
        data_root=data_root,
        data_prefix='train',
        metainfo=metainfo,
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=50,
    num_workers=1,
    persistent_workers=True,
    dataset=dict(
        _delete_=True,
        type='CustomDataset',
        data_root=data_root,
        data_prefix='val',
        metainfo=metainfo,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
# Three classes: top-5 is undefined, so top-1 and top-2.
val_evaluator = dict(type='Accuracy', topk=(1, 2))
test_evaluator = val_evaluator

base_lr = 2e-3
optim_wrapper = dict(optimizer=dict(lr=base_lr))
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=0.01,
        by_epoch=True,
        end=1,
        convert_to_iter_based=True),
    dict(
        type='CosineAnnealingLR',
        eta_min=1e-5,
        by_epoch=True,
        begin=1,
        end=max_epochs),
]
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=max_epochs, max_keep_ckpts=1))
log_processor = dict(window_size=10)
auto_scale_lr = dict(base_batch_size=32)
