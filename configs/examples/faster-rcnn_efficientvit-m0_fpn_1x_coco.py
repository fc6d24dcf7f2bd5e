# "Use EfficientViT in your own config": mmdet's stock Faster R-CNN (ResNet-50
# + the standard FPN) with EfficientViT-M0 swapped in. EfficientViT's maps
# have strides 16, 32 and 64, so the FPN gets their channels and the heads
# the strides of its five levels (16-256; max-pooled on top).
_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['evit_mm'], allow_failed_imports=False)

model = dict(
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
    neck=dict(in_channels=[64, 128, 192]),
    rpn_head=dict(
        anchor_generator=dict(scales=[2], strides=[16, 32, 64, 128, 256])),
    roi_head=dict(
        bbox_roi_extractor=dict(featmap_strides=[16, 32, 64, 128])))
# AdamW as in EfficientViT's own detection recipe.
optim_wrapper = dict(
    optimizer=dict(_delete_=True, type='AdamW', lr=1e-4, weight_decay=0.05))
