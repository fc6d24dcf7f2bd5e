# RetinaNet with EfficientViT-M0 on COCO, the official 1x recipe:
# EfficientViTFPN with one transposed-conv level (strides 8-128), 1333x800.
_base_ = [
    'mmdet::_base_/models/retinanet_r50_fpn.py',
    'mmdet::_base_/datasets/coco_detection.py',
    'mmdet::_base_/default_runtime.py', '../_base_/efficientvit_det_1x.py'
]

model = dict(
    backbone=_base_.efficientvit_backbone,
    neck=dict(
        _base_.efficientvit_fpn,
        num_extra_trans_convs=1,
        add_extra_convs='on_input'))
