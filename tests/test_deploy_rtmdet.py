"""RTMDet and RTMDet-Ins with EfficientViT deployed by
``tools/deployment/deploy.py`` in a fresh interpreter, to ONNX Runtime and
OpenVINO: predictions (NMS and masks included) equal PyTorch's on images of
two sizes, one not a multiple of 32, with the criteria of test_deploy.py."""
import os.path as osp

import pytest
import torch

pytest.importorskip('mmdeploy')
pytest.importorskip('onnxruntime')

from evit_mm.deploy.constants import BACKENDS  # noqa: E402
from evit_mm.deploy.mmdeploy_export import (deploy_config,  # noqa: E402
                                            deploy_task)
from test_deploy import (CONFIGS, SMALL_TEST_PIPELINE, _config,  # noqa: E402
                         check_deployments, class_logits, detections_match,
                         images, variant, with_boxes)

DEPLOY = 'tools/deployment/deploy.py'

# RTMDet keeps boxes from score 0.001, where scores 1e-3 apart (the
# comparison's tolerance) are not comparable: the usual 0.05 instead.
RTMDET = ('quickstart/rtmdet_efficientvit-m0_synthetic.py',
          'model = dict(test_cfg=dict(score_thr=0.05))\n')
# 3 classes and images kept near their size (320 px), as MASK_RCNN.
RTMDET_INS = ('rtmdet/rtmdet-ins_efficientvit-m0_8xb32-300e_coco.py', '''
model = dict(backbone=dict(init_cfg=None), bbox_head=dict(num_classes=3))
''' + SMALL_TEST_PIPELINE)


def rtmdet_with_boxes(config: str, imgs: list):
    """:func:`test_deploy.with_boxes` for RTMDet's per-level classifiers,
    with box distances of one to three strides (a fresh head predicts
    near-empty boxes, whose overlaps say nothing)."""
    model = with_boxes(config, imgs, lambda head: list(head.rtm_cls))
    # A fresh head's logits barely differ: spread them up to 100x around
    # the threshold's logit, so the kept scores stand apart from it, with
    # the highest at logit 4 at most: from logit 16 on, sigmoid saturates
    # at 1 - 2**-22 in float32, and NMS breaks such ties differently in
    # mmcv and in the backends.
    threshold = model.bbox_head.test_cfg.score_thr
    at = float(torch.logit(torch.tensor(threshold)))
    highest = class_logits(config, model, imgs[0]).max().item()
    spread = min(100., (4 - at) / (highest - at))
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for conv in model.bbox_head.rtm_cls:
            conv.weight *= spread
            conv.bias.copy_(spread * conv.bias - (spread - 1) * at)
        for reg in model.bbox_head.rtm_reg:
            reg.bias.copy_(torch.rand(reg.bias.shape, generator=generator)
                           * 2 + 1)
    return model


@pytest.mark.parametrize('config, task', [
    ('rtmdet/rtmdet_efficientvit-m3_8xb32-300e_coco.py', 'detection'),
    ('rtmdet/rtmdet-ins_efficientvit-m4_8xb32-300e_coco.py',
     'instance-seg-rtmdet'),
])
def test_rtmdet_configs_get_their_deploy_configs(config, task):
    model_cfg = _config(osp.join(CONFIGS, config))
    assert deploy_task(model_cfg) == task
    for backend in BACKENDS:
        cfg = deploy_config(model_cfg, backend)
        assert cfg.backend_config.type == backend
        outputs = ['dets', 'labels'] + (['masks'] if 'ins' in config else [])
        assert cfg.onnx_config.output_names == outputs
        assert set(outputs) <= set(cfg.onnx_config.dynamic_axes)


@pytest.mark.slow
@pytest.mark.runs(DEPLOY, '--backend', '--work-dir', '--shape')
@pytest.mark.parametrize('spec', [
    pytest.param(RTMDET, id='rtmdet'),
    pytest.param(RTMDET_INS, id='rtmdet-ins'),
])
def test_rtmdet_matches_pytorch(tmp_path, spec):
    config = variant(tmp_path, *spec)
    model = rtmdet_with_boxes(config, images(tmp_path))
    check_deployments(tmp_path, config, model, BACKENDS,
                      detections_match(model.bbox_head.test_cfg.score_thr))
