_base_ = './mask-rcnn_efficientvit-m0_fpn_1x_coco.py'

model = dict(
    backbone=dict(
        arch='m1',
        init_cfg=dict(checkpoint=_base_.efficientvit_url.format('m1'))),
    neck=dict(in_channels=[128, 144, 192]))
