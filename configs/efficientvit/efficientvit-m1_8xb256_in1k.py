_base_ = './efficientvit-m0_8xb256_in1k.py'

model = dict(backbone=dict(arch='m1'), head=dict(in_channels=192))
