# Quickstart: SegFormer's all-MLP head (mmseg's SegformerHead) with
# EfficientViT-M0, from scratch, on the synthetic shapes in ADE20K layout:
# the recipe, data, schedule and batch of the quickstart Semantic FPN
# (fpn_efficientvit-m0_synthetic.py), no neck, a 64-channel head on the
# levels of the ADE20K config: the patch embedding's stride-8 map and the
# three stage maps (strides 8, 16, 32, 64).
_base_ = './fpn_efficientvit-m0_synthetic.py'

model = dict(
    backbone=dict(embed_out_strides=(8, )),
    neck=None,
    decode_head=dict(
        _delete_=True,
        type='SegformerHead',
        in_channels=[32, 64, 128, 192],
        in_index=[0, 1, 2, 3],
        channels=64,
        dropout_ratio=0.1,
        num_classes=4,
        norm_cfg=dict(type='BN', requires_grad=True),
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)))
