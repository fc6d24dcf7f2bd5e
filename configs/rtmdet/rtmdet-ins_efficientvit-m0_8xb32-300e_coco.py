# RTMDet-Ins (instance segmentation) with EfficientViT-M0 on COCO: mmdet's
# RTMDet-Ins-tiny recipe with the backbone swapped as in RTMDet
# (../_base_/efficientvit_rtmdet.py); the mask prototypes come from all
# four levels, at stride 8.
_base_ = [
    'mmdet::rtmdet/rtmdet-ins_tiny_8xb32-300e_coco.py',
    '../_base_/efficientvit_rtmdet.py'
]

model = _base_.efficientvit_rtmdet
# Masks padded with the images (to a multiple of 64) for any pipeline.
model.data_preprocessor.pad_mask = True
optim_wrapper = _base_.efficientvit_rtmdet_optim_wrapper
# --auto-scale-lr: the recipe's lr is for 8 GPUs x 32 images (mmdet's
# schedule, inherited, says 16).
auto_scale_lr = dict(base_batch_size=256)
