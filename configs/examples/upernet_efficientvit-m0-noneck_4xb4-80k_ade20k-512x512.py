# mmseg's stock UperNet with EfficientViT-M0 swapped in, without a neck: the
# multi-level head reads the backbone's three maps (strides 16, 32, 64)
# directly, so in_index and in_channels list those three, and the auxiliary
# head reads the stride-32 map.
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
    decode_head=dict(in_channels=[64, 128, 192], in_index=[0, 1, 2]),
    auxiliary_head=dict(in_channels=128, in_index=1))
