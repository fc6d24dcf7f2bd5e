# Fine-tune RTMDet with EfficientViT-M0 on your own COCO-format dataset:
# the COCO config with your classes, their number, your data roots and a
# fine-tune schedule of 100 epochs instead of 300. RTMDet trains in two
# stages: mosaic and mix-up until `stage2_num_epochs` before the end, then
# the plain pipeline (PipelineSwitchHook); the switch epoch, the cosine
# decay and the per-epoch validation of the last stage all follow
# `max_epochs`, so change it here, not with --cfg-options. The backbone
# starts from the official ImageNet weights (downloaded on first use); the
# neck and head start from scratch. Layout expected here:
#   data/my_dataset/annotations/instances_{train,val}.json
#   data/my_dataset/{train,val}/*.jpg   (the file_name of each COCO image)
_base_ = '../rtmdet/rtmdet_efficientvit-m0_8xb32-300e_coco.py'

data_root = 'data/my_dataset/'
classes = ('circle', 'square', 'triangle')  # the names of your categories
metainfo = dict(classes=classes)

max_epochs = 100
stage2_num_epochs = 10
val_interval = 10

model = dict(bbox_head=dict(num_classes=len(classes)))

train_dataloader = dict(
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_train.json',
        data_prefix=dict(img='train/')))
val_dataloader = dict(
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_val.json',
        data_prefix=dict(img='val/')))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')
test_evaluator = val_evaluator

train_cfg = dict(
    max_epochs=max_epochs,
    val_interval=val_interval,
    dynamic_intervals=[(max_epochs - stage2_num_epochs, 1)])
# A 200-iteration warm-up (the COCO recipe's 1000 would span many epochs of
# a small dataset), then the recipe's cosine decay over the second half.
param_scheduler = [
    dict(
        type='LinearLR', start_factor=1.0e-5, by_epoch=False, begin=0,
        end=200),
    dict(
        type='CosineAnnealingLR',
        eta_min=_base_.base_lr * 0.05,
        begin=max_epochs // 2,
        end=max_epochs,
        T_max=max_epochs // 2,
        by_epoch=True,
        convert_to_iter_based=True)
]
custom_hooks = [
    _base_.custom_hooks[0],  # EMA of the weights, as in the recipe
    dict(
        type='PipelineSwitchHook',
        switch_epoch=max_epochs - stage2_num_epochs,
        switch_pipeline=_base_.train_pipeline_stage2)
]
# A log line every 10 iterations: a small dataset has few per epoch.
default_hooks = dict(
    checkpoint=dict(interval=val_interval),
    logger=dict(interval=10))
# The recipe's lr (4e-3) is for 8 GPUs x 32 images; --auto-scale-lr scales
# it to yours.
auto_scale_lr = dict(base_batch_size=256)
