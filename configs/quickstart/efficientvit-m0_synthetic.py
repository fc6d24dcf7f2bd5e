# Quickstart: an EfficientViT-M0 classifier trained from scratch on the
# synthetic shapes (circle, square, triangle on cluttered backgrounds;
# ImageNet-style folders written by
# tools/dataset_converters/make_synthetic_data.py --formats imagenet
# --num-train 12000 --num-val 300 --img-size 128) in minutes on 2 CPU cores.
# The ImageNet recipe at 80 px for 8 epochs, with a higher LR, no weight
# decay, flips instead of crops, and no RandAugment, random erasing,
# Mixup/CutMix or label smoothing.
_base_ = '../efficientvit/efficientvit-m0_8xb256_in1k.py'

data_root = 'data/synthetic/imagenet'
metainfo = dict(classes=('circle', 'square', 'triangle'))
image_size = 80
max_epochs = 8

model = dict(
    head=dict(
        num_classes=3,
        loss=dict(label_smooth_val=0.),
        topk=(1, 2)),
    train_cfg=None)  # no Mixup/CutMix
data_preprocessor = dict(num_classes=3)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='Resize',
        scale=(image_size, image_size),
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
    batch_size=64,
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
    batch_size=100,
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

base_lr = 8e-3
optim_wrapper = dict(optimizer=dict(lr=base_lr, weight_decay=0.))
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
        end=max_epochs,
        convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
default_hooks = dict(
    logger=dict(interval=20),
    checkpoint=dict(interval=max_epochs, max_keep_ckpts=1))
log_processor = dict(window_size=20)
auto_scale_lr = dict(base_batch_size=64)
