# RetinaNet-M0 with a lighter neck and head: 128 channels instead of 256 in
# the EfficientViTFPN and in the RetinaHead's towers. At 800x1333 the
# 256-channel head costs most of the model's time; this config keeps the
# backbone and the recipe (docs/performance.md, end-to-end speed).
_base_ = './retinanet_efficientvit-m0_fpn_1x_coco.py'

model = dict(
    neck=dict(out_channels=128),
    bbox_head=dict(in_channels=128, feat_channels=128))
