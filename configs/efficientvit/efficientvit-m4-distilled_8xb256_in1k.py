# EfficientViT-M4 trained with hard distillation from RegNetY-16GF, as the
# official script does with --distillation-type hard (alpha 0.5, the DeiT
# teacher). The teacher labels every (Mixup/CutMix) batch; its weights are
# read when training starts and never enter the student's checkpoints.
# Other archs: inherit this file and set model.backbone.arch and
# model.head.in_channels like efficientvit-m*_8xb256_in1k.py.
_base_ = './efficientvit-m4_8xb256_in1k.py'

model = dict(
    type='DistillImageClassifier',
    teacher=dict(
        type='TimmClassifier', model_name='regnety_160', num_classes=1000),
    teacher_checkpoint='https://dl.fbaipublicfiles.com/deit/'
    'regnety_160-a5fe301d.pth',
    head=dict(
        distillation=True,
        loss=dict(loss_weight=0.5),
        distill_loss=dict(type='CrossEntropyLoss', loss_weight=0.5)))
