# Shared by the EfficientViT detection configs: the backbone
# (efficientvit_backbone.py), the start of the official EfficientViTFPN
# neck, and the official 1x schedule: mmdet's (12 epochs, 500-iter linear
# warm-up from 0.001x, LR x0.1 after epochs 8 and 11) with AdamW, lr 1e-4
# at batch 16 (8 GPUs x 2), weight decay 0.05 except on the attention-bias
# tables.
_base_ = [
    './efficientvit_backbone.py', 'mmdet::_base_/schedules/schedule_1x.py'
]

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
