# Semantic FPN with EfficientViT-M0 on ADE20K (150 classes), the recipe of
# the light-backbone literature (PVT, PoolFormer): 512x512 crops, 40k
# iterations at batch 32 (4 GPUs x 8), AdamW lr 2e-4, weight decay 1e-4
# (none on the attention-bias tables), poly decay with power 0.9 to 0.
_base_ = [
    'mmseg::_base_/models/fpn_r50.py', 'mmseg::_base_/datasets/ade20k.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_40k.py', '../_base_/efficientvit_seg.py'
]

model = dict(
    pretrained=None,
    data_preprocessor=dict(size=_base_.crop_size),
    backbone=_base_.efficientvit_backbone,
    neck=_base_.efficientvit_neck,
    decode_head=dict(num_classes=150))

train_dataloader = dict(batch_size=8)

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-4, weight_decay=1e-4),
    paramwise_cfg=dict(custom_keys={'attention_biases': dict(decay_mult=0.)}))
param_scheduler = [
    dict(
        type='PolyLR',
        power=0.9,
        eta_min=0.,
        begin=0,
        end=40000,
        by_epoch=False)
]
auto_scale_lr = dict(enable=False, base_batch_size=32)
