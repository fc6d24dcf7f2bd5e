# RTMDet with EfficientViT-M0 on COCO: mmdet's RTMDet-tiny recipe (its
# pipelines, the pipeline switch, EMA, the 300-epoch schedule, its
# CSPNeXtPAFPN neck and head at 96 channels) with the backbone swapped
# (../_base_/efficientvit_rtmdet.py).
_base_ = [
    'mmdet::rtmdet/rtmdet_tiny_8xb32-300e_coco.py',
    '../_base_/efficientvit_rtmdet.py'
]

model = _base_.efficientvit_rtmdet
optim_wrapper = _base_.efficientvit_rtmdet_optim_wrapper
# --auto-scale-lr: the recipe's lr is for 8 GPUs x 32 images (mmdet's
# schedule, inherited, says 16).
auto_scale_lr = dict(base_batch_size=256)
