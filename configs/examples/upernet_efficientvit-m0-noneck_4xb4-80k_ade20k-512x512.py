# The UperNet example without its neck: the multi-level head reads the
# backbone's three maps (strides 16, 32, 64) directly, so in_index and
# in_channels list those three, and the auxiliary head reads the stride-32
# map.
_base_ = './upernet_efficientvit-m0_4xb4-80k_ade20k-512x512.py'

model = dict(
    neck=None,
    decode_head=dict(in_channels=[64, 128, 192], in_index=[0, 1, 2]),
    auxiliary_head=dict(in_channels=128, in_index=1))
