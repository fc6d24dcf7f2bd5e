# The quickstart detection data and recipe, shared by the quickstart
# RetinaNets and RTMDets (configs/quickstart/): the synthetic shapes dataset
# (tools/quickstart.sh makes it: 1000 train / 100 val images of 192x192, in
# COCO format), resize + flip, AdamW lr 2e-3, batch 8, 12 epochs with a
# 50-iteration warm-up and cosine decay, seed 0. Its names are its own, so
# that a config can inherit it beside a toolbox's base and pick what it
# needs.
quickstart_data_root = 'data/synthetic/coco/'
quickstart_metainfo = dict(
    classes=('circle', 'square', 'triangle'),
    palette=[(220, 20, 60), (0, 130, 230), (250, 170, 30)])
quickstart_image_size = (192, 192)
quickstart_max_epochs = 12

quickstart_train_dataloader = dict(
    batch_size=8,
    num_workers=1,
    pin_memory=False,
    dataset=dict(
        data_root=quickstart_data_root,
        metainfo=quickstart_metainfo,
        ann_file='annotations/instances_train.json',
        data_prefix=dict(img='train/'),
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='LoadAnnotations', with_bbox=True),
            dict(type='Resize', scale=quickstart_image_size, keep_ratio=True),
            dict(type='RandomFlip', prob=0.5),
            dict(type='PackDetInputs')
        ]))
# Also the configs' top-level test_pipeline, which mmdeploy and mmdet's
# inference APIs read.
quickstart_test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=quickstart_image_size, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor'))
]
quickstart_val_dataloader = dict(
    batch_size=8,
    num_workers=1,
    dataset=dict(
        data_root=quickstart_data_root,
        metainfo=quickstart_metainfo,
        ann_file='annotations/instances_val.json',
        data_prefix=dict(img='val/'),
        pipeline=quickstart_test_pipeline))
quickstart_evaluator = dict(
    ann_file=quickstart_data_root + 'annotations/instances_val.json')

quickstart_optim_wrapper = dict(optimizer=dict(lr=2e-3))
quickstart_param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=50),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0,
         end=quickstart_max_epochs, eta_min=2e-5)
]
quickstart_train_cfg = dict(
    max_epochs=quickstart_max_epochs, val_interval=quickstart_max_epochs)
quickstart_default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=quickstart_max_epochs, max_keep_ckpts=1))
