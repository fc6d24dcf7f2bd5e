# mmseg's stock FCN (dilated ResNet-50) with EfficientViT-M0 swapped in:
# single-level heads, no neck. Each head names one backbone map by in_index
# and takes its channels; `channels` is the head's own width. EfficientViT
# is not dilated: the last map has stride 64 (8x8 cells at 512x512).
_base_ = 'mmseg::fcn/fcn_r50-d8_4xb4-80k_ade20k-512x512.py'
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
    decode_head=dict(in_index=2, in_channels=192, channels=256),  # stride 64
    auxiliary_head=dict(in_index=1, in_channels=128, channels=128))  # 32
