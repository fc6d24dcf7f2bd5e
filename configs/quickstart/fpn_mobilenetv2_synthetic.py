# The quickstart Semantic FPN with mmseg's MobileNetV2, from scratch, for
# tools/analysis_tools/compare_backbones.sh: the stride 4/8/16/32 maps (24,
# 32, 96 and 320 channels) and the neck of fpn_r18_synthetic.py.
_base_ = './fpn_r18_synthetic.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='mmseg.MobileNetV2',
        out_indices=(1, 2, 4, 6),
        norm_eval=False,
        init_cfg=None),
    neck=dict(in_channels=[24, 32, 96, 320]))
