_base_ = './efficientvit-m0_8xb256_in1k.py'

model = dict(backbone=dict(arch='m2'), head=dict(in_channels=224))
