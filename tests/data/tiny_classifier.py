# A tiny EfficientViT classifier (a custom 16-channel arch) on the synthetic ImageNet-style folders
# (64x64 images), iteration-based with a checkpoint every iteration: the
# reliability tests train, kill, resume and test it in seconds. Set
# data_root with --cfg-options data_root=... train_dataloader.dataset.
# data_root=... (see tests/test_reliability.py).
_base_ = 'mmpretrain::_base_/default_runtime.py'
custom_imports = dict(imports=['evit_mm'], allow_failed_imports=False)

data_root = 'data/synthetic/imagenet/'
model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='EfficientViT',
        arch=dict(
            embed_dims=[16, 16, 16],
            depths=[1, 1, 1],
            num_heads=[1, 1, 1],
            kernels=[3]),
        out_indices=(2, )),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=3,
        in_channels=16,
        loss=dict(type='CrossEntropyLoss')))
data_preprocessor = dict(
    num_classes=3,
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    to_rgb=True)
train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type='CustomDataset',
        data_root=data_root,
        data_prefix='train',
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='RandomFlip', prob=0.5, direction='horizontal'),
            dict(type='PackInputs')
        ]))
test_dataloader = dict(
    batch_size=4,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='CustomDataset',
        data_root=data_root,
        data_prefix='val',
        pipeline=[dict(type='LoadImageFromFile'),
                  dict(type='PackInputs')]))
test_evaluator = dict(type='Accuracy', topk=(1, ))
test_cfg = dict()

optim_wrapper = dict(optimizer=dict(type='AdamW', lr=1e-3,
                                    weight_decay=0.05))
train_cfg = dict(by_epoch=False, max_iters=20)
default_hooks = dict(
    logger=dict(interval=1),
    checkpoint=dict(
        type='CheckpointHook', by_epoch=False, interval=1, max_keep_ckpts=2))
log_processor = dict(by_epoch=False, window_size=1)
randomness = dict(seed=0)
