# Shared by the EfficientViT segmentation configs: evit_mm registered, the
# backbone started from the official ImageNet weights of its arch with BN
# statistics frozen (as the official downstream models train it), and the
# neck that turns its stride-16/32/64 maps into the four levels at strides
# 4, 8, 16 and 32 that Semantic FPN and UperNet are designed for: 1x1
# laterals and a top-down path over all three maps, 3x3 outputs at strides
# 16 and 32, and two 2x2 stride-2 transposed convs from the stride-16
# lateral for strides 8 and 4 (the stride-64 map reaches every level through
# the top-down path but gets no output of its own).
custom_imports = dict(imports=['evit_mm'], allow_failed_imports=False)

efficientvit_url = ('https://github.com/xinyuliu-jeffrey/EfficientVit_Model_Zoo'
                    '/releases/download/v1.0/efficientvit_{}.pth')
efficientvit_backbone = dict(
    _delete_=True,
    type='EfficientViT',
    arch='m0',
    window_size=7,
    out_indices=(0, 1, 2),
    frozen_stages=-1,
    norm_eval=True,
    init_cfg=dict(type='Pretrained', checkpoint=efficientvit_url.format('m0')))
efficientvit_neck = dict(  # sets every key of the bases' necks
    type='EfficientViTFPN',
    in_channels=[64, 128, 192],
    out_channels=256,
    num_outs=4,
    num_extra_trans_convs=2,
    num_backbone_outs=2)
