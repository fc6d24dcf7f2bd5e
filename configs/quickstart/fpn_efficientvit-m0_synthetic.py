# Quickstart: Semantic FPN with EfficientViT-M0 trained from scratch on the
# ADE20K-style copy of the synthetic shapes dataset
# (tools/dataset_converters/make_synthetic_data.py) in a few minutes on 2 CPU
# cores. The ADE20K config with a smaller neck and head, BN instead of
# SyncBN, 256x256 images, a higher LR and a short schedule. Label 0 of these
# maps is background, a class of its own here (reduce_zero_label=False): 4
# classes, and mIoU counts every pixel.
_base_ = '../sem_fpn/fpn_efficientvit-m0_4xb8-40k_ade20k-512x512.py'

data_root = 'data/synthetic/ade/'
metainfo = dict(
    classes=('background', 'circle', 'square', 'triangle'),
    palette=[(0, 0, 0), (220, 20, 60), (0, 130, 230), (250, 170, 30)])
crop_size = (256, 256)
max_iters = 1000
norm_cfg = dict(type='BN', requires_grad=True)

# From scratch: no pretrained weights. Set on the inherited backbone
# template too, so that the saved config does not show its Pretrained URL.
efficientvit_backbone = dict(norm_eval=False, init_cfg=None)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=efficientvit_backbone,
    neck=dict(out_channels=64),
    decode_head=dict(
        in_channels=[64, 64, 64, 64],
        channels=64,
        num_classes=4,
        norm_cfg=norm_cfg))

dataset = dict(
    type='BaseSegDataset',
    data_root=data_root,
    metainfo=metainfo,
    img_suffix='.jpg',
    seg_map_suffix='.png',
    reduce_zero_label=False)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=False),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=False),
    dict(type='PackSegInputs')
]
train_dataloader = dict(
    batch_size=8,
    num_workers=1,
    dataset=dict(
        _delete_=True,
        data_prefix=dict(
            img_path='images/training', seg_map_path='annotations/training'),
        pipeline=train_pipeline,
        **dataset))
val_dataloader = dict(
    batch_size=8,
    num_workers=1,
    dataset=dict(
        _delete_=True,
        data_prefix=dict(
            img_path='images/validation',
            seg_map_path='annotations/validation'),
        pipeline=test_pipeline,
        **dataset))
test_dataloader = val_dataloader

optim_wrapper = dict(optimizer=dict(lr=2e-3))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=50),
    dict(type='PolyLR', power=0.9, eta_min=0., begin=50, end=max_iters,
         by_epoch=False)
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(
    logger=dict(interval=20),
    checkpoint=dict(interval=max_iters, max_keep_ckpts=1),
    visualization=dict(interval=1))  # --show-dir draws every val batch
auto_scale_lr = dict(base_batch_size=8)
