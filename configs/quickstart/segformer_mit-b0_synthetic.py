# The quickstart SegFormer (segformer_efficientvit-m0_synthetic.py: same
# head, data, optimizer, schedule and batch) with its stock backbone,
# mmseg's MiT-B0 (SegFormer-B0's settings: mmseg::_base_/models/
# segformer_mit-b0.py), from scratch, for
# tools/analysis_tools/compare_backbones.sh: its four maps at strides 4, 8,
# 16 and 32 (32, 64, 160 and 256 channels).
_base_ = './segformer_efficientvit-m0_synthetic.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='MixVisionTransformer',
        embed_dims=32,
        num_layers=[2, 2, 2, 2],
        num_heads=[1, 2, 5, 8],
        drop_path_rate=0.1,
        init_cfg=None),
    decode_head=dict(in_channels=[32, 64, 160, 256], in_index=[0, 1, 2, 3]))
