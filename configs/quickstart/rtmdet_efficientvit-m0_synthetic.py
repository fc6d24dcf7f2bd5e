# The quickstart RTMDet (rtmdet_tiny_synthetic.py: same recipe, data,
# budget and seed) with the model of
# ../rtmdet/rtmdet_efficientvit-m0_8xb32-300e_coco.py: EfficientViT-M0 in
# place of CSPNeXt, from scratch, its patch embedding's stride-8 map and its
# first two stage maps (strides 8, 16, 32) feeding RTMDet's CSPNeXtPAFPN
# and head.
_base_ = ['./rtmdet_tiny_synthetic.py', '../_base_/efficientvit_rtmdet.py']

model = _base_.efficientvit_rtmdet
model.backbone.init_cfg = None
optim_wrapper = _base_.efficientvit_rtmdet_optim_wrapper
