# Mask R-CNN with EfficientViT-M0 on COCO, the official 1x recipe:
# EfficientViTFPN with two transposed-conv levels (strides 4-64), 1333x800.
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py',
    'mmdet::_base_/datasets/coco_instance.py',
    'mmdet::_base_/default_runtime.py', '../_base_/efficientvit_det_1x.py'
]

model = dict(
    backbone=_base_.efficientvit_backbone,
    neck=dict(
        _base_.efficientvit_fpn,
        num_extra_trans_convs=2))
