# Peer of the EfficientViT Semantic FPNs: mmseg's stock Semantic FPN on
# ADE20K with mmseg's MobileNetV2 backbone; its stride-4/8/16/32 maps
# (layer2, layer3, layer5, layer7: 24, 32, 96 and 320 channels) feed the
# FPN.
_base_ = 'mmseg::sem_fpn/fpn_r50_4xb4-160k_ade20k-512x512.py'

model = dict(
    pretrained='mmcls://mobilenet_v2',
    backbone=dict(
        _delete_=True,
        type='MobileNetV2',
        out_indices=(1, 2, 4, 6),
        norm_cfg=dict(type='SyncBN', requires_grad=True)),
    neck=dict(in_channels=[24, 32, 96, 320]))
# --auto-scale-lr: the recipe's lr is for 4 GPUs x 4 images.
auto_scale_lr = dict(enable=False, base_batch_size=16)
