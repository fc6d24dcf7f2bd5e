_base_ = './retinanet_efficientvit-m0_fpn_1x_coco.py'

model = dict(
    backbone=dict(
        arch='m4',
        init_cfg=dict(checkpoint=_base_.efficientvit_url.format('m4'))),
    neck=dict(in_channels=[128, 256, 384]))
