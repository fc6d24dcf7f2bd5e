_base_ = './mask-rcnn_efficientvit-m0_fpn_1x_coco.py'

model = dict(
    backbone=dict(
        arch='m3',
        init_cfg=dict(checkpoint=_base_.efficientvit_url.format('m3'))),
    neck=dict(in_channels=[128, 240, 320]))
