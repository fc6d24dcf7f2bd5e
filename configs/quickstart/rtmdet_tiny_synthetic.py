# The quickstart detection recipe (retinanet_efficientvit-m0_synthetic.py:
# synthetic shapes at 192x192, resize + flip, AdamW lr 2e-3, batch 8, 12
# epochs with a 50-iteration warm-up and cosine decay, seed 0) applied to
# mmdet's RTMDet-tiny, CSPNeXt backbone from scratch: the stock peer of
# rtmdet_efficientvit-m0_synthetic.py for
# tools/analysis_tools/compare_backbones.sh. RTMDet's 300-epoch extras
# (mosaic/mix-up, the pipeline switch, EMA) are left out, as for every
# quickstart model.
_base_ = [
    'mmdet::rtmdet/rtmdet_tiny_8xb32-300e_coco.py',
    '../_base_/quickstart_detection.py'
]

model = dict(
    backbone=dict(init_cfg=None), bbox_head=dict(num_classes=3))

train_dataloader = _base_.quickstart_train_dataloader
val_dataloader = test_dataloader = _base_.quickstart_val_dataloader
test_pipeline = _base_.quickstart_test_pipeline
val_evaluator = test_evaluator = _base_.quickstart_evaluator
optim_wrapper = _base_.quickstart_optim_wrapper
param_scheduler = _base_.quickstart_param_scheduler
train_cfg = dict(_base_.quickstart_train_cfg, dynamic_intervals=None)
default_hooks = _base_.quickstart_default_hooks
log_processor = dict(window_size=10)
custom_hooks = []
auto_scale_lr = dict(base_batch_size=8)
randomness = dict(seed=0)
