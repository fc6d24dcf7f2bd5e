_base_ = './fpn_efficientvit-m0_4xb8-40k_ade20k-512x512.py'

model = dict(
    backbone=dict(
        arch='m3',
        init_cfg=dict(checkpoint=_base_.efficientvit_url.format('m3'))),
    neck=dict(in_channels=[128, 240, 320]))
