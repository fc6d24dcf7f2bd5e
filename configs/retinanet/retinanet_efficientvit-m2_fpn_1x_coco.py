_base_ = './retinanet_efficientvit-m0_fpn_1x_coco.py'

model = dict(
    backbone=dict(
        arch='m2',
        init_cfg=dict(checkpoint=_base_.efficientvit_url.format('m2'))),
    neck=dict(in_channels=[128, 192, 224]))
