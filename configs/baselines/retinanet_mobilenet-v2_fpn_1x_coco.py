# Peer of the EfficientViT RetinaNets: mmdet's stock RetinaNet (ResNet-50
# FPN, 1x COCO) with mmdet's MobileNetV2 backbone. Its stride-8/16/32 maps
# (layer3, layer5, layer7: 32, 96 and 320 channels) feed the FPN, which adds
# P6 and P7 from the last input as the stock RetinaNet does.
_base_ = 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='MobileNetV2',
        out_indices=(2, 4, 6),
        act_cfg=dict(type='ReLU6'),
        init_cfg=dict(
            type='Pretrained', checkpoint='open-mmlab://mmdet/mobilenet_v2')),
    neck=dict(in_channels=[32, 96, 320], start_level=0))
