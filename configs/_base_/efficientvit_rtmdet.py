# Shared by the RTMDet and RTMDet-Ins configs with EfficientViT: what
# changes in mmdet's RTMDet-tiny model and optimizer. The backbone starts
# from the official ImageNet weights (so images are normalised as in
# ImageNet training, in RGB) and returns its patch embedding's stride-8 map
# and its first two stage maps: RTMDet's three levels, strides 8, 16 and
# 32, for its CSPNeXtPAFPN neck and head (docs/detection.md gives the
# measurements behind this choice; the last stage, stride 64, is neither
# run nor trained, and its weights still load). The neck's top-down path doubles each level's size, so
# batches are padded to a multiple of the coarsest stride (32). BN
# statistics are trained, as in RTMDet (32 images per GPU).
_base_ = ['./efficientvit_backbone.py']

efficientvit_rtmdet = dict(
    data_preprocessor=dict(
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_size_divisor=32),
    backbone=dict(
        _base_.efficientvit_backbone,
        embed_out_strides=(8, ),
        out_indices=(0, 1),
        norm_eval=False),
    neck=dict(in_channels=[32, 64, 128]),
    bbox_head=dict(anchor_generator=dict(strides=[8, 16, 32])))
efficientvit_rtmdet_optim_wrapper = dict(
    paramwise_cfg=dict(custom_keys={'attention_biases': dict(decay_mult=0.)}))
