# Shared by the EfficientViT detection and segmentation configs: evit_mm
# registered, and the backbone as the official downstream models use it:
# the official ImageNet weights of its arch, 7x7 windows, the three stage
# maps (strides 16, 32, 64), BN statistics frozen, nothing else frozen.
custom_imports = dict(imports=['evit_mm'], allow_failed_imports=False)

efficientvit_url = ('https://github.com/xinyuliu-jeffrey/EfficientViT_Model_Zoo'
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
