_base_ = './upernet_efficientvit-m0_4xb4-160k_ade20k-512x512.py'

model = dict(
    backbone=dict(
        arch='m4',
        init_cfg=dict(checkpoint=_base_.efficientvit_url.format('m4'))),
    neck=dict(in_channels=[128, 256, 384]))
