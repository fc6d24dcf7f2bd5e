_base_ = './upernet_efficientvit-m0_4xb4-160k_ade20k-512x512.py'

model = dict(
    backbone=dict(
        arch='m5',
        init_cfg=dict(checkpoint=_base_.efficientvit_url.format('m5'))),
    neck=dict(in_channels=[192, 288, 384]))
