# Quickstart: RetinaNet-M0 trained from scratch on the synthetic shapes
# dataset (tools/quickstart.sh makes it: 1000 train / 100 val images of
# 192x192) in a few minutes on 2 CPU cores. The official COCO config with
# what a short from-scratch run needs: a narrower head with GroupNorm, a
# GIoU box loss, small images, a higher LR and a 12-epoch cosine schedule.
_base_ = '../retinanet/retinanet_efficientvit-m0_fpn_1x_coco.py'

data_root = 'data/synthetic/coco/'
metainfo = dict(
    classes=('circle', 'square', 'triangle'),
    palette=[(220, 20, 60), (0, 130, 230), (250, 170, 30)])
image_size = (192, 192)
max_epochs = 12

# From scratch: no pretrained weights. Set on the inherited backbone
# template too, so that the saved config does not show its Pretrained URL.
efficientvit_backbone = dict(norm_eval=False, init_cfg=None)
model = dict(
    backbone=efficientvit_backbone,
    neck=dict(out_channels=64),
    bbox_head=dict(
        num_classes=3,
        in_channels=64,
        feat_channels=64,
        stacked_convs=2,
        norm_cfg=dict(type='GN', num_groups=16, requires_grad=True),
        reg_decoded_bbox=True,
        loss_bbox=dict(_delete_=True, type='GIoULoss', loss_weight=2.0)))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor'))
]
train_dataloader = dict(
    batch_size=8,
    num_workers=1,
    batch_sampler=None,
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_train.json',
        data_prefix=dict(img='train/'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8,
    num_workers=1,
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_val.json',
        data_prefix=dict(img='val/'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')
test_evaluator = val_evaluator

optim_wrapper = dict(optimizer=dict(lr=2e-3))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=50),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs,
         eta_min=2e-5)
]
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=max_epochs, max_keep_ckpts=1))
log_processor = dict(window_size=10)
# Drawings: one box per shape, with its best class (the shapes never
# overlap, so boxes overlapping as much as NMS allows are one shape seen
# under several classes); labels kept inside the small images and apart.
visualizer = dict(type='ReadableDetVisualizer', same_iou=0.5)
auto_scale_lr = dict(base_batch_size=8)
randomness = dict(seed=0)
