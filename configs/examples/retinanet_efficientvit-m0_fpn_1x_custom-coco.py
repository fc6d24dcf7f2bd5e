# Fine-tune RetinaNet with EfficientViT-M0 on your own COCO-format dataset:
# the COCO config with your classes, their number and your data roots.
# The backbone starts from the official ImageNet weights (downloaded on first
# use); the neck and head start from scratch. Layout expected here:
#   data/my_dataset/annotations/instances_{train,val}.json
#   data/my_dataset/{train,val}/*.jpg   (the file_name of each COCO image)
_base_ = '../retinanet/retinanet_efficientvit-m0_fpn_1x_coco.py'

data_root = 'data/my_dataset/'
classes = ('circle', 'square', 'triangle')  # the names of your categories
metainfo = dict(classes=classes)

model = dict(bbox_head=dict(num_classes=len(classes)))

train_dataloader = dict(
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_train.json',
        data_prefix=dict(img='train/')))
val_dataloader = dict(
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_val.json',
        data_prefix=dict(img='val/')))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')
test_evaluator = val_evaluator
# A log line every 10 iterations (the recipe's 50 can be more than a small
# dataset's epoch).
default_hooks = dict(logger=dict(interval=10))
