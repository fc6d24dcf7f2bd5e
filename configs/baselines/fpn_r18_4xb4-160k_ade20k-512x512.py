# Peer of the EfficientViT Semantic FPNs: mmseg's stock Semantic FPN on
# ADE20K with a ResNetV1c-18 backbone (64/128/256/512 channels at strides
# 4-32) instead of ResNetV1c-50.
_base_ = 'mmseg::sem_fpn/fpn_r50_4xb4-160k_ade20k-512x512.py'

model = dict(
    pretrained='open-mmlab://resnet18_v1c',
    backbone=dict(depth=18),
    neck=dict(in_channels=[64, 128, 256, 512]))
# --auto-scale-lr: the recipe's lr is for 4 GPUs x 4 images.
auto_scale_lr = dict(enable=False, base_batch_size=16)
