_base_ = './segformer_efficientvit-m0_8xb2-160k_ade20k-512x512.py'

model = dict(
    backbone=dict(
        arch='m4',
        init_cfg=dict(checkpoint=_base_.efficientvit_url.format('m4'))),
    decode_head=dict(in_channels=[64, 128, 256, 384]))
