_base_ = './rtmdet_efficientvit-m0_8xb32-300e_coco.py'

model = dict(
    backbone=dict(
        arch='m4',
        init_cfg=dict(checkpoint=_base_.efficientvit_url.format('m4'))),
    neck=dict(in_channels=[64, 128, 256]))
