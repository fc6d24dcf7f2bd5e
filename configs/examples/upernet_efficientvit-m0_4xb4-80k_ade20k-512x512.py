# mmseg's stock UperNet (ResNet-50) with EfficientViT-M0 swapped in, with a
# neck: UperNet fuses four levels at strides 4, 8, 16 and 32, and
# EfficientViTFPN makes them from EfficientViT's three maps (strides 16, 32,
# 64), 256 channels each. The heads keep their in_index: decode head levels
# [0, 1, 2, 3], auxiliary head level 2 (stride 16).
_base_ = 'mmseg::upernet/upernet_r50_4xb4-80k_ade20k-512x512.py'
custom_imports = dict(imports=['evit_mm'], allow_failed_imports=False)

model = dict(
    pretrained=None,  # the stock ResNet-50 weights; EfficientViT's: init_cfg
    backbone=dict(
        _delete_=True,
        type='EfficientViT',
        arch='m0',
        norm_eval=True,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://github.com/xinyuliu-jeffrey/'
            'EfficientViT_Model_Zoo/releases/download/v1.0/efficientvit_m0.pth'
        )),
    neck=dict(
        type='EfficientViTFPN',
        in_channels=[64, 128, 192],  # M0's stage channels
        out_channels=256,
        num_outs=4,
        num_extra_trans_convs=2,  # strides 8 and 4 from the stride-16 map
        num_backbone_outs=2),  # outputs at strides 16 and 32
    decode_head=dict(in_channels=[256, 256, 256, 256]),
    auxiliary_head=dict(in_channels=256))
