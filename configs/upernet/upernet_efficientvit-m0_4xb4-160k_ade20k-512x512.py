# UperNet with EfficientViT-M0 on ADE20K (150 classes), Swin's recipe:
# 512x512 crops, 160k iterations at batch 16 (4 GPUs x 4), AdamW lr 6e-5,
# betas (0.9, 0.999), weight decay 0.01 except on norm layers and the
# attention-bias tables, 1500-iteration linear warm-up then poly decay
# (power 1) to 0; auxiliary FCN head on the stride-16 level.
_base_ = [
    'mmseg::_base_/models/upernet_r50.py', 'mmseg::_base_/datasets/ade20k.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_160k.py',
    '../_base_/efficientvit_seg.py'
]

model = dict(
    pretrained=None,
    data_preprocessor=dict(size=_base_.crop_size),
    backbone=_base_.efficientvit_backbone,
    neck=_base_.efficientvit_neck,
    decode_head=dict(in_channels=[256, 256, 256, 256], num_classes=150),
    auxiliary_head=dict(in_channels=256, in_index=2, num_classes=150))

train_dataloader = dict(batch_size=4)

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=6e-5, betas=(0.9, 0.999), weight_decay=0.01),
    paramwise_cfg=dict(
        norm_decay_mult=0.,
        custom_keys={'attention_biases': dict(decay_mult=0.)}))
param_scheduler = [
    dict(
        type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0,
        end=1500),
    dict(
        type='PolyLR',
        power=1.0,
        eta_min=0.,
        begin=1500,
        end=160000,
        by_epoch=False)
]
auto_scale_lr = dict(enable=False, base_batch_size=16)
