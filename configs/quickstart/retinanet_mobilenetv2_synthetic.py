# The quickstart RetinaNet with mmdet's MobileNetV2, from scratch, for
# tools/analysis_tools/compare_backbones.sh: the stride 8/16/32 maps (32,
# 96 and 320 channels) and the neck of retinanet_r18_synthetic.py.
_base_ = './retinanet_r18_synthetic.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='mmdet.MobileNetV2',
        out_indices=(2, 4, 6),
        norm_eval=False,
        init_cfg=None),
    neck=dict(in_channels=[32, 96, 320]))
