_base_ = './rtmdet_efficientvit-m0_8xb32-300e_coco.py'

model = dict(
    backbone=dict(
        arch='m5',
        init_cfg=dict(checkpoint=_base_.efficientvit_url.format('m5'))),
    neck=dict(in_channels=[96, 192, 288]))
