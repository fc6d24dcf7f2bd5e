# The quickstart RetinaNet (retinanet_efficientvit-m0_synthetic.py: same
# head, data, optimizer, schedule, batch and seed) with mmdet's ResNet-18,
# from scratch, for tools/analysis_tools/compare_backbones.sh. Its stride
# 8/16/32 maps feed mmdet's FPN, whose two extra convs give the same five
# levels (strides 8-128) the EfficientViT neck gives, so the anchors match.
_base_ = './retinanet_efficientvit-m0_synthetic.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='ResNet',
        depth=18,
        out_indices=(1, 2, 3),
        frozen_stages=-1,
        norm_eval=False,
        init_cfg=None),
    neck=dict(
        _delete_=True,
        type='FPN',
        in_channels=[128, 256, 512],
        out_channels=64,
        add_extra_convs='on_input',
        num_outs=5))
