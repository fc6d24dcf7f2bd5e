# Shared by the EfficientViT segmentation configs: the backbone
# (efficientvit_backbone.py) and the neck that turns its stride-16/32/64
# maps into the four levels at strides 4, 8, 16 and 32 that Semantic FPN and
# UperNet are designed for: 1x1 laterals and a top-down path over all three
# maps, 3x3 outputs at strides 16 and 32, and two 2x2 stride-2 transposed
# convs from the stride-16 lateral for strides 8 and 4 (the stride-64 map
# reaches every level through the top-down path but gets no output of its
# own).
_base_ = './efficientvit_backbone.py'

efficientvit_neck = dict(  # sets every key of the bases' necks
    type='EfficientViTFPN',
    in_channels=[64, 128, 192],
    out_channels=256,
    num_outs=4,
    num_extra_trans_convs=2,
    num_backbone_outs=2)
