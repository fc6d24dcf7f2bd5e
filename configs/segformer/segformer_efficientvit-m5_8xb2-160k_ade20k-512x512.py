_base_ = './segformer_efficientvit-m0_8xb2-160k_ade20k-512x512.py'

model = dict(
    backbone=dict(
        arch='m5',
        init_cfg=dict(checkpoint=_base_.efficientvit_url.format('m5'))),
    decode_head=dict(in_channels=[96, 192, 288, 384]))
