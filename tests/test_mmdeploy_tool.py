"""mmdeploy's own deploy path on the real-time M0 models: the export that
mmdeploy's ``tools/deploy.py`` makes (``mmdeploy.apis.torch2onnx`` with a
deploy config and the model config's path, mmdeploy imported first, the
export in a spawned process), run in a fresh interpreter with nothing of
evit_mm but what the model config's ``custom_imports`` brings. The
``end2end.onnx`` it writes runs in ONNX Runtime behind mmdeploy's own
backend model and agrees with PyTorch on a 517x333 image: the detector's
and the classifier's predictions, the segmentor's label map as the graph
gives it."""
import copy
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch

pytest.importorskip('mmdeploy')
pytest.importorskip('onnxruntime')

from evit_mm.deploy import build_from_config  # noqa: E402
from evit_mm.deploy.mmdeploy_export import deploy_configs_dir  # noqa: E402
from reference import randomize_  # noqa: E402
from test_deploy import (_config, detections_match,  # noqa: E402
                         label_maps_match, scores_match,
                         segmentor_with_spread_logits, variant)
from test_deploy_rtmdet import rtmdet_with_boxes  # noqa: E402
from tool_helpers import REPO_ROOT  # noqa: E402

# What tools/deploy.py of mmdeploy 1.3.1 does up to the ONNX file: import
# mmdeploy, run torch2onnx in a spawned process (PIPELINE_MANAGER), give it
# the config files' paths.
MMDEPLOY_TORCH2ONNX = '''
import sys
from torch.multiprocessing import set_start_method
from mmdeploy.apis import torch2onnx
from mmdeploy.apis.core import PIPELINE_MANAGER

if __name__ == '__main__':
    set_start_method('spawn', force=True)
    PIPELINE_MANAGER.enable_multiprocess(True, [torch2onnx])
    img, work_dir, deploy_cfg, model_cfg, checkpoint = sys.argv[1:]
    torch2onnx(img, work_dir, 'end2end.onnx', deploy_cfg, model_cfg,
               checkpoint, device='cpu')
'''
# The real-time M0 detector; RTMDet keeps boxes from score 0.001, where
# scores 1e-3 apart (the comparison's tolerance) are not comparable.
RTMDET_M0 = ('rtmdet/rtmdet_efficientvit-m0_8xb32-300e_coco.py',
             'model = dict(test_cfg=dict(score_thr=0.05))\n')
SEGFORMER_M0 = osp.join(
    REPO_ROOT, 'configs', 'segformer',
    'segformer_efficientvit-m0_8xb2-160k_ade20k-512x512.py')
CLASSIFIER_M0 = osp.join(REPO_ROOT, 'configs', 'efficientvit',
                         'efficientvit-m0_8xb256_in1k.py')
HEIGHT, WIDTH = 333, 517


def image(tmp_path) -> str:
    """A 517x333 image file: noise with bright shapes."""
    import cv2
    img = np.random.default_rng(1).integers(0, 120, (HEIGHT, WIDTH, 3),
                                            dtype=np.uint8)
    cv2.circle(img, (WIDTH // 3, HEIGHT // 3), HEIGHT // 6, (40, 200, 240),
               -1)
    cv2.rectangle(img, (WIDTH // 2, HEIGHT // 2), (WIDTH - 20, HEIGHT - 30),
                  (230, 90, 30), -1)
    path = str(tmp_path / 'img.png')
    cv2.imwrite(path, img)
    return path


def mmdeploy_export(tmp_path, config: str, deploy_cfg: str, model,
                    img: str) -> str:
    """Save ``model`` as a checkpoint, export it as mmdeploy's tool does in
    a fresh interpreter, and return the work dir."""
    checkpoint = str(tmp_path / 'model.pth')
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), checkpoint)
    work_dir = str(tmp_path / 'work_dir')
    result = subprocess.run(
        [sys.executable, '-c', MMDEPLOY_TORCH2ONNX, img, work_dir,
         deploy_cfg, config, checkpoint],
        cwd=str(tmp_path), capture_output=True, text=True,
        env={**os.environ, 'PYTHONPATH': REPO_ROOT})
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert osp.isfile(osp.join(work_dir, 'end2end.onnx')), output[-4000:]
    return work_dir


def exported(tmp_path, config: str, task: str, model, img: str):
    """Export with mmdeploy's own path and the project's ONNX Runtime deploy
    config of ``task``; return mmdeploy's ONNX Runtime backend model of
    ``end2end.onnx``, the PyTorch model of the same checkpoint and the data
    of ``img``, from mmdeploy's pre-processing."""
    from mmdeploy.apis import build_task_processor
    deploy_cfg = osp.join(deploy_configs_dir(),
                          f'{task}_onnxruntime_dynamic.py')
    work_dir = mmdeploy_export(tmp_path, config, deploy_cfg, model, img)
    processor = build_task_processor(_config(config), _config(deploy_cfg),
                                     'cpu')
    backend = processor.build_backend_model(
        [osp.join(work_dir, 'end2end.onnx')],
        data_preprocessor_updater=processor.update_data_preprocessor)
    data, _ = processor.create_input([img])
    # As mmengine's runner: a top-level data_preprocessor (mmpretrain's
    # configs) is the model's.
    preprocessor = _config(config).get('data_preprocessor')
    reference = build_from_config(
        config, str(tmp_path / 'model.pth'),
        preprocessor and {'model.data_preprocessor': preprocessor})
    return backend, reference, data


def check_predictions(tmp_path, config: str, task: str, model, img: str,
                      compare) -> None:
    """``compare`` the prediction of the deployed model with PyTorch's on
    ``img``, post-processing included (:func:`exported`)."""
    backend, reference, data = exported(tmp_path, config, task, model, img)
    # Each gets its own copy: the models write their predictions into the
    # data samples they are given.
    with torch.no_grad():
        expected = reference.test_step(copy.deepcopy(data))[0]
        actual = backend.test_step(copy.deepcopy(data))[0]
    assert actual.ori_shape == expected.ori_shape == (HEIGHT, WIDTH)
    compare(expected, actual)


@pytest.mark.slow
def test_mmdeploy_tool_exports_rtmdet_m0(tmp_path):
    config = variant(tmp_path, *RTMDET_M0)
    img = image(tmp_path)
    model = rtmdet_with_boxes(config, [img])
    check_predictions(tmp_path, config, 'detection', model, img,
                      detections_match(model.bbox_head.test_cfg.score_thr))


@pytest.mark.slow
def test_mmdeploy_tool_exports_segformer_m0(tmp_path):
    """The graph's label map (argmax in the graph, at the network input's
    size: 795x512) against the argmax of PyTorch's logits at that size.
    After the graph, mmdeploy resizes the labels to the image (nearest),
    where mmseg resizes the logits (bilinear) before the argmax: the two
    differ along label borders by design, whatever the graph."""
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    img = image(tmp_path)
    model = segmentor_with_spread_logits(SEGFORMER_M0, [img])
    backend, reference, data = exported(tmp_path, SEGFORMER_M0,
                                        'segmentation', model, img)
    with torch.no_grad():
        batch = reference.data_preprocessor(data, False)
        logits = reference.encode_decode(
            batch['inputs'], [s.metainfo for s in batch['data_samples']])
        inputs = backend.data_preprocessor(data, False)['inputs']
        labels = backend.wrapper(dict(input=inputs))['output']
    assert labels.shape[2:] == inputs.shape[2:] == (512, 795)
    label_maps_match(
        SegDataSample(pred_sem_seg=PixelData(data=logits.argmax(1)[0:1])),
        SegDataSample(pred_sem_seg=PixelData(data=labels[0])))


@pytest.mark.slow
def test_mmdeploy_tool_exports_classifier_m0(tmp_path):
    img = image(tmp_path)
    torch.manual_seed(0)
    model = randomize_(build_from_config(CLASSIFIER_M0))
    check_predictions(tmp_path, CLASSIFIER_M0, 'classification', model, img,
                      scores_match)


def test_evit_mm_registers_its_exporter_only_beside_mmdeploy(tmp_path):
    """``import evit_mm`` does not import mmdeploy; after mmdeploy (as in
    mmdeploy's tools, whose config loading imports evit_mm), an export
    inside mmdeploy's rewriter context uses the TorchScript exporter, which
    needs no onnxscript."""
    env = {**os.environ, 'PYTHONPATH': REPO_ROOT}
    alone = subprocess.run(
        [sys.executable, '-c',
         "import sys, evit_mm; print(sorted(m for m in sys.modules "
         "if m.split('.')[0] == 'mmdeploy'))"],
        capture_output=True, text=True, env=env)
    assert alone.returncode == 0, alone.stderr[-4000:]
    assert alone.stdout.strip() == '[]'
    onnx_file = str(tmp_path / 'relu.onnx')
    beside = subprocess.run(
        [sys.executable, '-c', '''
import sys, torch
import mmdeploy.apis
import evit_mm
from mmdeploy.core import RewriterContext
with RewriterContext(cfg={}, backend='onnxruntime'):
    torch.onnx.export(torch.nn.ReLU(), (torch.ones(1), ), sys.argv[1])
''', onnx_file], capture_output=True, text=True, env=env)
    assert beside.returncode == 0, beside.stderr[-4000:]
    assert osp.isfile(onnx_file)
