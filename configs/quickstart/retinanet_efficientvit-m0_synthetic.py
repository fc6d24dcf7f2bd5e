# Quickstart: RetinaNet-M0 trained from scratch on the synthetic shapes
# dataset (tools/quickstart.sh makes it: 1000 train / 100 val images of
# 192x192) in a few minutes on 2 CPU cores. The official COCO config with
# what a short from-scratch run needs: a narrower head with GroupNorm, a
# GIoU box loss, small images, a higher LR and a 12-epoch cosine schedule.
_base_ = [
    '../retinanet/retinanet_efficientvit-m0_fpn_1x_coco.py',
    '../_base_/quickstart_detection.py'
]

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

train_dataloader = dict(_base_.quickstart_train_dataloader, batch_sampler=None)
val_dataloader = test_dataloader = _base_.quickstart_val_dataloader
test_pipeline = _base_.quickstart_test_pipeline
val_evaluator = test_evaluator = _base_.quickstart_evaluator
optim_wrapper = _base_.quickstart_optim_wrapper
param_scheduler = _base_.quickstart_param_scheduler
train_cfg = _base_.quickstart_train_cfg
default_hooks = _base_.quickstart_default_hooks
log_processor = dict(window_size=10)
# Drawings: one box per shape, with its best class (the shapes never
# overlap, so boxes overlapping as much as NMS allows are one shape seen
# under several classes); labels kept inside the small images and apart.
visualizer = dict(type='ReadableDetVisualizer', same_iou=0.5)
auto_scale_lr = dict(base_batch_size=8)
randomness = dict(seed=0)
