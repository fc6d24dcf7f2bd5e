"""The deployed model answers like the toolbox's own inference on the same
image file: ``DeployedModel(work_dir).predict([file])`` (deployment.md's
code, which pre-processes with the config's top-level ``test_pipeline``, as
mmdeploy does) against mmdet's ``inference_detector``, mmseg's
``inference_model`` and mmpretrain's ``ImageClassificationInferencer``
(which run the test dataloader's pipeline) on the same checkpoint: every
quickstart model and the real-time RTMDet-M0, each deployed once to ONNX
Runtime. Seeded random weights, set so that boxes and labels are present
(test_deploy.py)."""
import glob
import os.path as osp
import re

import pytest
import torch

pytest.importorskip('mmdeploy')
pytest.importorskip('onnxruntime')

from evit_mm.deploy import build_from_config  # noqa: E402
from evit_mm.deploy.backends import DeployedModel  # noqa: E402
from evit_mm.deploy.mmdeploy_export import deploy_model  # noqa: E402
from reference import randomize_, relative_error  # noqa: E402
from test_deploy import (CONFIGS, SCORE_DIFF, assert_same_instances,  # noqa
                         images, segmentor_with_spread_logits, variant,
                         with_boxes)
from test_deploy_rtmdet import rtmdet_with_boxes  # noqa: E402
from tool_helpers import run_script  # noqa: E402

DEPLOY = 'tools/deployment/deploy.py'
# RTMDet keeps boxes from score 0.001; compared from 0.05 (test_deploy_rtmdet)
RTMDET_DELTA = 'model = dict(test_cfg=dict(score_thr=0.05))\n'
RETINANETS = ['retinanet_efficientvit-m0_synthetic.py',
              'retinanet_mobilenetv2_synthetic.py',
              'retinanet_r18_synthetic.py']
RTMDETS = ['rtmdet_efficientvit-m0_synthetic.py', 'rtmdet_tiny_synthetic.py']
SEGMENTORS = ['fpn_efficientvit-m0_synthetic.py',
              'fpn_mobilenetv2_synthetic.py', 'fpn_r18_synthetic.py',
              'segformer_efficientvit-m0_synthetic.py',
              'segformer_mit-b0_synthetic.py']
CLASSIFIER = 'efficientvit-m0_synthetic.py'
RTMDET_M0 = 'rtmdet/rtmdet_efficientvit-m0_8xb32-300e_coco.py'


def test_every_quickstart_model_is_compared():
    shipped = {osp.basename(path) for path in glob.glob(
        osp.join(CONFIGS, 'quickstart', '*.py'))}
    assert shipped == {*RETINANETS, *RTMDETS, *SEGMENTORS, CLASSIFIER}


def _deploy(tmp_path, config: str, model, img: str, deploy=deploy_model,
            **options):
    """``model`` saved as a checkpoint and deployed to ONNX Runtime with
    ``img`` traced by ``deploy`` (``deploy_model``'s arguments, ``options``
    added); the checkpoint and the deployed model."""
    checkpoint = str(tmp_path / 'model.pth')
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), checkpoint)
    work_dir = str(tmp_path / 'ort')
    deploy(config, checkpoint, 'onnxruntime', work_dir, img=img, **options)
    return checkpoint, DeployedModel(work_dir)


def _same_image_shapes(expected, actual):
    assert actual.ori_shape == expected.ori_shape
    assert actual.img_shape == expected.img_shape


def _check_detector(tmp_path, config: str, model, deploy=deploy_model):
    """The deployed detector's boxes on the 200x312 image against
    ``inference_detector``'s; returns the latter's prediction."""
    from mmdet.apis import inference_detector, init_detector
    img = images(tmp_path)[1]
    checkpoint, deployed = _deploy(tmp_path, config, model, img, deploy)
    expected = inference_detector(
        init_detector(config, checkpoint, device='cpu'), img)
    actual = deployed.predict([img])[0]
    _same_image_shapes(expected, actual)
    threshold = model.bbox_head.test_cfg.score_thr
    assert len(expected.pred_instances) < 100, 'top-k cut: not comparable'
    assert assert_same_instances(expected.pred_instances,
                                 actual.pred_instances, threshold) > 0
    return expected


@pytest.mark.slow
@pytest.mark.parametrize('name', RETINANETS[1:])
def test_quickstart_retinanet_answers_like_inference_detector(tmp_path, name):
    config = osp.join(CONFIGS, 'quickstart', name)
    imgs = images(tmp_path)
    _check_detector(tmp_path, config, with_boxes(
        config, imgs[1:], lambda head: [head.retina_cls]))


@pytest.mark.slow
@pytest.mark.runs(DEPLOY, '--backend', '--work-dir', '--img')
def test_quickstart_retinanet_m0_deploy_prints_what_mmdet_finds(tmp_path):
    """Deployed by ``deploy.py --img`` in a fresh interpreter, as
    deployment.md does: the line it prints (instances, top score) is the
    PyTorch model's too."""
    config = osp.join(CONFIGS, 'quickstart', RETINANETS[0])
    printed = []

    def deploy(config, checkpoint, backend, work_dir, img):
        printed.append(run_script(DEPLOY, config, checkpoint, '--backend',
                                  backend, '--work-dir', work_dir,
                                  '--img', img))
        printed.append(img)

    expected = _check_detector(
        tmp_path, config, with_boxes(config, images(tmp_path)[1:],
                                     lambda head: [head.retina_cls]), deploy)
    output, img = printed
    count, top = re.search(
        rf'{re.escape(img)}: (\d+) instances, top score ([\d.]+)',
        output).groups()
    scores = expected.pred_instances.scores
    threshold = 0.05  # the config's score_thr
    assert (scores > threshold + SCORE_DIFF).sum() <= int(count) <= \
        (scores > threshold - SCORE_DIFF).sum()
    assert abs(float(top) - scores.max().item()) <= SCORE_DIFF + 5e-4


@pytest.mark.slow
@pytest.mark.parametrize('config', [
    pytest.param(osp.join('quickstart', name), id=name) for name in RTMDETS
] + [pytest.param(RTMDET_M0, id='rtmdet-m0-coco')])
def test_rtmdet_answers_like_inference_detector(tmp_path, config):
    delta = RTMDET_DELTA
    if config == RTMDET_M0:
        delta += 'model.update(backbone=dict(init_cfg=None))\n'
    config = variant(tmp_path, config, delta)
    _check_detector(tmp_path, config,
                    rtmdet_with_boxes(config, images(tmp_path)[1:]))


@pytest.mark.slow
@pytest.mark.parametrize('name', SEGMENTORS)
def test_quickstart_segmentor_answers_like_inference_model(tmp_path, name):
    from mmseg.apis import inference_model, init_model
    config = osp.join(CONFIGS, 'quickstart', name)
    img = images(tmp_path)[1]
    model = segmentor_with_spread_logits(config, [img])
    # mmseg's MixVisionTransformer exports aten::unflatten: opset 13 and up
    options = dict(opset=13) if 'mit-b0' in name else {}
    checkpoint, deployed = _deploy(tmp_path, config, model, img, **options)
    expected = inference_model(init_model(config, checkpoint, device='cpu'),
                               img)
    actual = deployed.predict([img])[0]
    _same_image_shapes(expected, actual)
    expected, actual = expected.pred_sem_seg.data, actual.pred_sem_seg.data
    assert expected.unique().numel() > 1, 'one label only: vacuous'
    assert actual.shape == expected.shape
    assert (actual == expected).float().mean().item() >= 0.999


@pytest.mark.slow
def test_quickstart_classifier_answers_like_its_inferencer(tmp_path):
    from mmpretrain.apis import ImageClassificationInferencer
    config = osp.join(CONFIGS, 'quickstart', CLASSIFIER)
    img = images(tmp_path)[1]
    torch.manual_seed(0)
    checkpoint, deployed = _deploy(
        tmp_path, config, randomize_(build_from_config(config)), img)
    inferencer = ImageClassificationInferencer(
        model=config, pretrained=checkpoint, device='cpu')
    expected = inferencer(img, return_datasamples=True)[0]
    actual = deployed.predict([img])[0]
    _same_image_shapes(expected, actual)
    assert actual.pred_label == expected.pred_label
    assert relative_error(actual.pred_score, expected.pred_score) <= 1e-4
