# Shared by the EfficientViT detection configs: evit_mm registered, the
# backbone as the official detectors use it (ImageNet weights, BN statistics
# frozen, nothing else frozen), the start of their EfficientViTFPN neck,
# and the official 1x schedule: mmdet's (12
# epochs, 500-iter linear warm-up from 0.001x, LR x0.1 after epochs 8 and
# 11) with AdamW, lr 1e-4 at batch 16 (8 GPUs x 2), weight decay 0.05 except
# on the attention-bias tables.
_base_ = 'mmdet::_base_/schedules/schedule_1x.py'
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
efficientvit_fpn = dict(
    _delete_=True,
    type='EfficientViTFPN',
    in_channels=[64, 128, 192],
    out_channels=256,
    num_outs=5)

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(custom_keys={'attention_biases': dict(decay_mult=0.)}))
