# mmseg's stock FCN (dilated ResNet-50) with EfficientViT-M0 swapped in:
# single-level heads, no neck. Each head names one backbone map by in_index
# and takes its channels; `channels` is the head's own width. EfficientViT
# is not dilated: the last map has stride 64 (8x8 cells at 512x512).
_base_ = [
    'mmseg::fcn/fcn_r50-d8_4xb4-80k_ade20k-512x512.py',
    '../_base_/efficientvit_backbone.py'  # custom_imports, backbone
]

model = dict(
    pretrained=None,  # the stock ResNet-50 weights; EfficientViT's: init_cfg
    backbone=_base_.efficientvit_backbone,  # M0, official ImageNet weights
    decode_head=dict(in_index=2, in_channels=192, channels=256),  # stride 64
    auxiliary_head=dict(in_index=1, in_channels=128, channels=128))  # 32
# The stock recipe's total batch (4 GPUs x 4), for --auto-scale-lr.
auto_scale_lr = dict(enable=False, base_batch_size=16)
