# SegFormer's all-MLP head (mmseg's SegformerHead) with EfficientViT-M0 on
# ADE20K (150 classes), SegFormer-B0's recipe as mmseg ships it: 512x512
# crops, 160k iterations at batch 16 (8 GPUs x 2), AdamW lr 6e-5, betas
# (0.9, 0.999), weight decay 0.01, 10x LR on the head, 1500-iteration linear
# warm-up then poly decay (power 1) to 0. MiT's "no decay on position
# blocks and norms" becomes no decay on EfficientViT's attention-bias tables
# and on the backbone's BN layers. No neck: the head reads the patch
# embedding's stride-8 map (embed_dims[0] / 2 channels) and the three stage
# maps (strides 16, 32, 64), and predicts at stride 8
# (docs/segmentation.md: the levels measured).
_base_ = [
    'mmseg::segformer/segformer_mit-b0_8xb2-160k_ade20k-512x512.py',
    '../_base_/efficientvit_backbone.py'
]

model = dict(
    backbone=dict(_base_.efficientvit_backbone, embed_out_strides=(8, )),
    decode_head=dict(
        in_channels=[32, 64, 128, 192], in_index=[0, 1, 2, 3]))

optim_wrapper = dict(
    paramwise_cfg=dict(
        norm_decay_mult=0.,
        custom_keys=dict(
            _delete_=True,
            attention_biases=dict(decay_mult=0.),
            head=dict(lr_mult=10.))))
auto_scale_lr = dict(enable=False, base_batch_size=16)
