# mmseg's stock UperNet (ResNet-50) with EfficientViT-M0 swapped in, with a
# neck: UperNet fuses four levels at strides 4, 8, 16 and 32, and
# EfficientViTFPN makes them from EfficientViT's three maps (strides 16, 32,
# 64), 256 channels each. The heads keep their in_index: decode head levels
# [0, 1, 2, 3], auxiliary head level 2 (stride 16).
_base_ = [
    'mmseg::upernet/upernet_r50_4xb4-80k_ade20k-512x512.py',
    '../_base_/efficientvit_seg.py'  # custom_imports, backbone, neck
]

model = dict(
    pretrained=None,  # the stock ResNet-50 weights; EfficientViT's: init_cfg
    backbone=_base_.efficientvit_backbone,  # M0, official ImageNet weights
    neck=_base_.efficientvit_neck,  # in_channels=[64, 128, 192]: M0's
    decode_head=dict(in_channels=[256, 256, 256, 256]),
    auxiliary_head=dict(in_channels=256))
# The stock recipe's total batch (4 GPUs x 4), for --auto-scale-lr.
auto_scale_lr = dict(enable=False, base_batch_size=16)
