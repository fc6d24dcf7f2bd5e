# The quickstart Semantic FPN (fpn_efficientvit-m0_synthetic.py: same head,
# data, optimizer, schedule and batch) with mmseg's ResNet-18 (V1c, the
# deep-stem variant mmseg's FPN base uses), from scratch, for
# tools/analysis_tools/compare_backbones.sh. Its four maps (strides 4-32)
# feed mmseg's FPN: the four levels the EfficientViT neck gives.
_base_ = './fpn_efficientvit-m0_synthetic.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='ResNetV1c',
        depth=18,
        norm_eval=False,
        init_cfg=None),
    neck=dict(
        _delete_=True,
        type='FPN',
        in_channels=[64, 128, 256, 512],
        out_channels=64,
        num_outs=4))
