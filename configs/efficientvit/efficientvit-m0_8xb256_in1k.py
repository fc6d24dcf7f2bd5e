# EfficientViT-M0 on ImageNet-1k, the official recipe (microsoft/Cream,
# EfficientViT/classification/main.py defaults) on mmpretrain's LeViT bases,
# from which that recipe descends.
_base_ = [
    'mmpretrain::_base_/datasets/imagenet_bs256_levit_224.py',
    'mmpretrain::_base_/schedules/imagenet_bs2048_adamw_levit.py',
    'mmpretrain::_base_/default_runtime.py',
]
custom_imports = dict(imports=['evit_mm'], allow_failed_imports=False)

model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='EfficientViT',
        arch='m0',
        # 224 px gives 14, 7, 4 px stage maps; the official stage-3 window
        # is its whole 4x4 map.
        window_size=(7, 7, 4),
        out_indices=(2, )),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='EfficientViTClsHead',
        num_classes=1000,
        in_channels=192,
        loss=dict(
            type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        topk=(1, 5)),
    train_cfg=dict(augments=[
        dict(type='Mixup', alpha=0.8),
        dict(type='CutMix', alpha=1.0),
    ]))

# Repeated augmentation (3 views per image per epoch), as the official run.
train_dataloader = dict(sampler=dict(type='RepeatAugSampler', shuffle=True))

# The official script scales --lr 1e-3 by batch / 512: 4e-3 at 8 x 256.
base_lr = 1e-3 * 2048 / 512
optim_wrapper = dict(optimizer=dict(lr=base_lr, weight_decay=0.025))
# Adaptive gradient clipping, as the official --clip-mode agc --clip-grad 0.02.
custom_hooks = [dict(type='AdaptiveGradClipHook', clip_factor=0.02)]
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-6 / base_lr,
        by_epoch=True,
        end=5,
        convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=True, begin=5),
]
train_cfg = dict(max_epochs=300)
# `--auto-scale-lr` rescales the lr linearly to the real total batch size.
auto_scale_lr = dict(base_batch_size=2048)
