"""Whole models deployed with mmdeploy by ``tools/deployment/deploy.py`` run
as a user runs it (a fresh interpreter, the options deployment.md gives):
the deployed model's predictions, post-processing included, equal the
PyTorch model's on the same images at two sizes, one not a multiple of 32;
bad input is refused before any export work, and leaves nothing behind."""
import os
import os.path as osp

import numpy as np
import pytest
import torch

pytest.importorskip('mmdeploy')
pytest.importorskip('onnxruntime')

from evit_mm.checkpoint import CheckpointError  # noqa: E402
from evit_mm.deploy.constants import (BACKENDS,  # noqa: E402
                                      GRAPH_PADDING, RESIZE_LOGITS)
from evit_mm.deploy.mmdeploy_export import (DeployError,  # noqa: E402
                                            deploy_config, deploy_model,
                                            deploy_task,
                                            private_fx_wrap_bookkeeping)
from evit_mm.deploy import build_from_config  # noqa: E402
from evit_mm.deploy.work_dir import Deployment  # noqa: E402
from reference import randomize_, relative_error  # noqa: E402
from tool_helpers import REPO_ROOT, load_tool, run_script  # noqa: E402

DEPLOY = 'tools/deployment/deploy.py'

CONFIGS = osp.join(REPO_ROOT, 'configs')
RETINANET = osp.join(CONFIGS, 'quickstart',
                     'retinanet_efficientvit-m0_synthetic.py')
SEM_FPN = osp.join(CONFIGS, 'quickstart', 'fpn_efficientvit-m0_synthetic.py')
SEGFORMER = osp.join(CONFIGS, 'quickstart',
                     'segformer_efficientvit-m0_synthetic.py')
CLASSIFIER = osp.join(CONFIGS, 'quickstart', 'efficientvit-m0_synthetic.py')
# Small variants: 3 classes, images kept near their size, BN for SyncBN.
# Images kept near their size (320 px) at test time.
SMALL_TEST_PIPELINE = '''
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(320, 320), keep_ratio=True),
    dict(type='PackDetInputs', meta_keys=(
        'img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))]
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
'''
MASK_RCNN = ('mask_rcnn/mask-rcnn_efficientvit-m0_fpn_1x_coco.py', '''
model = dict(backbone=dict(init_cfg=None), roi_head=dict(
    bbox_head=dict(num_classes=3), mask_head=dict(num_classes=3)))
''' + SMALL_TEST_PIPELINE)
UPERNET = ('upernet/upernet_efficientvit-m0_4xb4-160k_ade20k-512x512.py', '''
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    data_preprocessor=dict(size=None),
    backbone=dict(init_cfg=None),
    decode_head=dict(channels=64, num_classes=4, norm_cfg=norm_cfg),
    auxiliary_head=dict(channels=64, num_classes=4, norm_cfg=norm_cfg))
test_pipeline = [dict(type='LoadImageFromFile'), dict(type='PackSegInputs')]
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
''')
# The classifier at the images' own sizes instead of 80x80.
CLASSIFIER_ANY_SIZE = (CLASSIFIER, '''
test_pipeline = [dict(type='LoadImageFromFile'), dict(type='PackInputs')]
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
''')
# 256x256, and 200x312 (detection: resized to 123x192, 205x320).
IMAGE_SIZES = ((256, 256), (200, 312))
SCORE_DIFF = 1e-3
# Scales the random classification logits: a few confident boxes.
SHARPEN = 4.


def variant(tmp_path, base: str, delta: str) -> str:
    """A config file ``delta`` over ``base`` (relative to configs/)."""
    path = tmp_path / f'variant_{osp.basename(base)}'
    path.write_text(f'_base_ = {osp.join(CONFIGS, base)!r}\n{delta}')
    return str(path)


def images(tmp_path) -> list:
    """Image files of :data:`IMAGE_SIZES`: noise with bright shapes."""
    import cv2
    rng = np.random.default_rng(0)
    files = []
    for i, (height, width) in enumerate(IMAGE_SIZES):
        img = rng.integers(0, 120, (height, width, 3), dtype=np.uint8)
        cv2.circle(img, (width // 3, height // 3), height // 6,
                   (40, 200, 240), -1)
        cv2.rectangle(img, (width // 2, height // 2),
                      (width - 20, height - 30), (230, 90, 30), -1)
        files.append(str(tmp_path / f'img{i}.png'))
        cv2.imwrite(files[-1], img)
    return files


def _logit(p: float) -> float:
    return float(np.log(p / (1 - p)))


def class_logits(config: str, model, img: str) -> torch.Tensor:
    """The classification logits of a one-stage detector on ``img``, with
    the deployed model's pre-processing, flattened over levels.

    Args:
        config (str): The model's config file.
        model: The detector (its data preprocessor and ``tensor`` mode).
        img (str): An image file.
    """
    from mmdeploy.apis import build_task_processor
    processor = build_task_processor(
        _config(config), deploy_config(_config(config), 'onnxruntime'), 'cpu')
    _, inputs = processor.create_input(
        [img], data_preprocessor=model.data_preprocessor)
    with torch.no_grad():
        cls_scores = model(inputs, mode='tensor')[0]
    return torch.cat([s.flatten() for s in cls_scores])


def with_boxes(config: str, imgs: list, classifiers, count: int = 30):
    """A seeded random one-stage detector whose classification bias puts
    about ``count`` priors of the first image above the score threshold, so
    that NMS keeps real boxes and no top-k limit is reached.

    Args:
        classifiers: ``bbox_head -> list`` of its classification convs.
    """
    torch.manual_seed(0)
    model = build_from_config(config)
    logits = class_logits(config, model, imgs[0]) * SHARPEN
    kth = logits.topk(count).values[-1].item()
    threshold = model.bbox_head.test_cfg.score_thr
    with torch.no_grad():
        for conv in classifiers(model.bbox_head):
            conv.weight *= SHARPEN
            conv.bias *= SHARPEN
            conv.bias += _logit(threshold) - kth
    return model


def segmentor_with_spread_logits(config: str, imgs: list):
    """A seeded random segmentor whose class logits vary over the image.
    Random weights give SegFormer's head logits that are nearly the same
    at every pixel (one label everywhere); its classifier is rescaled so
    that on the first image each class logit has mean 0 and spread 1."""
    from mmdeploy.apis import build_task_processor
    torch.manual_seed(0)
    model = randomize_(build_from_config(config))
    processor = build_task_processor(
        _config(config), deploy_config(_config(config), 'onnxruntime'), 'cpu')
    _, inputs = processor.create_input(
        imgs[:1], data_preprocessor=model.data_preprocessor)
    with torch.no_grad():
        logits = model(inputs, mode='tensor')
        mean, std = logits.mean((0, 2, 3)), logits.std((0, 2, 3))
        conv_seg = model.decode_head.conv_seg
        conv_seg.weight /= std[:, None, None, None]
        conv_seg.bias.sub_(mean).div_(std)
    return model


def mask_rcnn_with_boxes(config: str, imgs: list, count: int = 15):
    """A seeded random Mask R-CNN whose class logits are spread out and
    whose background logit leaves at least ``count`` (RoI, class) pairs of
    each image above the score threshold."""
    from mmdeploy.apis import build_task_processor
    torch.manual_seed(0)
    model = build_from_config(config)
    fc_cls = model.roi_head.bbox_head.fc_cls
    captured = []
    handle = fc_cls.register_forward_hook(
        lambda module, args, out: captured.append(out[:, :-1]))
    processor = build_task_processor(
        _config(config), deploy_config(_config(config), 'onnxruntime'), 'cpu')
    for img in imgs:
        data, _ = processor.create_input([img])
        with torch.no_grad():
            model.test_step(data)
    handle.remove()
    # Random class logits barely differ between RoIs: spread them (std 2).
    spread = 2 / torch.cat(captured).std().item()
    captured = [classes * spread for classes in captured]
    threshold = model.roi_head.test_cfg.score_thr

    def fewest_above(background: float) -> int:
        return min(
            int((torch.cat([classes, torch.full_like(classes[:, :1],
                                                     background)],
                           1).softmax(1)[:, :-1] > threshold).sum())
            for classes in captured)

    low = min(c.min().item() for c in captured) - 10
    high = max(c.max().item() for c in captured) + 10
    for _ in range(50):
        middle = (low + high) / 2
        low, high = ((middle, high) if fewest_above(middle) >= count else
                     (low, middle))
    with torch.no_grad():
        fc_cls.weight[:-1] *= spread
        fc_cls.bias[:-1] *= spread
        fc_cls.weight[-1] = 0
        fc_cls.bias[-1] = low
    return model


def _config(path: str):
    from mmengine.config import Config
    return Config.fromfile(path)


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    from mmdet.structures.bbox import bbox_overlaps
    return bbox_overlaps(a, b)


def assert_same_instances(expected, actual, threshold: float) -> int:
    """Every instance above ``threshold`` (+ the score tolerance) in either
    prediction has a twin in the other: same label, IoU >= 0.99, score
    within 1e-3, and (with masks) >= 99% equal pixels inside its box.
    Returns how many instances were compared."""
    compared = 0
    for one, other in ((expected, actual), (actual, expected)):
        keep = one.scores > threshold + SCORE_DIFF
        if not keep.any():
            continue
        ious = box_iou(one.bboxes[keep], other.bboxes)
        same = ((one.labels[keep][:, None] == other.labels[None]) &
                ((one.scores[keep][:, None] - other.scores[None]).abs() <=
                 SCORE_DIFF))
        ious = torch.where(same, ious, torch.zeros_like(ious))
        best, match = ious.max(1) if ious.numel() else (
            torch.zeros(int(keep.sum())), None)
        assert (best >= 0.99).all(), (
            f'{int((best < 0.99).sum())} of {int(keep.sum())} boxes above '
            f'{threshold} unmatched; best IoUs {best.tolist()}')
        if 'masks' in one:
            for index, twin in zip(keep.nonzero()[:, 0].tolist(),
                                   match.tolist()):
                x1, y1, x2, y2 = one.bboxes[index].int().tolist()
                mine = one.masks[index][y1:y2 + 1, x1:x2 + 1]
                theirs = other.masks[twin][y1:y2 + 1, x1:x2 + 1]
                agreement = (mine == theirs).float().mean().item()
                assert agreement >= 0.99, (index, agreement)
        compared += int(keep.sum())
    return compared


def detections_match(threshold: float):
    """Comparison of detection data samples (boxes, and masks if any)."""

    def compare(expected, actual) -> None:
        expected, actual = expected.pred_instances, actual.pred_instances
        assert len(expected) < 100, 'top-k cut reached: not comparable'
        assert assert_same_instances(expected, actual, threshold) > 0, \
            f'no boxes above {threshold}: the check is vacuous'

    return compare


def label_maps_match(expected, actual) -> None:
    expected, actual = expected.pred_sem_seg.data, actual.pred_sem_seg.data
    assert actual.shape == expected.shape
    assert expected.unique().numel() > 1, 'one label only: vacuous'
    agreement = (actual == expected).float().mean().item()
    assert agreement >= 0.999, agreement


def scores_match(expected, actual) -> None:
    """Class scores (mmdeploy exports the softmax), and the logits up to
    their common shift (log-scores)."""
    expected, actual = expected.pred_score, actual.pred_score
    assert relative_error(actual, expected) <= 1e-4
    assert relative_error(actual.log(), expected.log()) <= 1e-4


def check_deployments(tmp_path, config: str, model, backends, compare,
                      options=('--shape', '160', '224')):
    """Deploy ``model`` (saved as a checkpoint) of ``config`` to each
    backend with ``tools/deployment/deploy.py CONFIG CHECKPOINT --backend B
    --work-dir D *options`` and ``compare`` its predictions with PyTorch's
    on the images of :data:`IMAGE_SIZES`, with the deployed model's
    pre-processing."""
    from evit_mm.deploy.backends import DeployedModel
    checkpoint = str(tmp_path / 'model.pth')
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), checkpoint)
    # As mmengine's runner: a top-level data_preprocessor (mmpretrain's
    # configs) is the model's.
    preprocessor = _config(config).get('data_preprocessor')
    reference = build_from_config(
        config, checkpoint, preprocessor and {
            'model.data_preprocessor': preprocessor})
    for backend in backends:
        work_dir = tmp_path / backend
        run_script(DEPLOY, config, checkpoint, '--backend', backend,
                   '--work-dir', work_dir, *options)
        deployment = Deployment.from_work_dir(str(work_dir))
        assert all(osp.isfile(f) for f in deployment.backend_files)
        assert not [n for n in os.listdir(work_dir) if n.startswith('.')]
        deployed = DeployedModel(str(work_dir))
        for img, size in zip(images(tmp_path), IMAGE_SIZES):
            data, _ = deployed.task_processor.create_input([img])
            with torch.no_grad():
                expected = reference.test_step(data)[0]
            actual = deployed.predict([img])[0]
            assert actual.ori_shape == expected.ori_shape == size
            compare(expected, actual)


@pytest.mark.slow
@pytest.mark.runs(DEPLOY, '--backend', '--work-dir', '--img')
def test_retinanet_matches_pytorch(tmp_path):
    """Traced with a real image (``--img``), as deployment.md does."""
    imgs = images(tmp_path)
    model = with_boxes(RETINANET, imgs, lambda head: [head.retina_cls])
    check_deployments(tmp_path, RETINANET, model, BACKENDS,
                      detections_match(model.bbox_head.test_cfg.score_thr),
                      options=('--img', imgs[0]))


@pytest.mark.slow
@pytest.mark.runs(DEPLOY, '--backend', '--work-dir', '--shape')
def test_mask_rcnn_matches_pytorch(tmp_path):
    config = variant(tmp_path, *MASK_RCNN)
    model = mask_rcnn_with_boxes(config, images(tmp_path))
    check_deployments(
        tmp_path, config, model, BACKENDS,
        detections_match(model.roi_head.test_cfg.score_thr))


@pytest.mark.slow
@pytest.mark.runs(DEPLOY, '--backend', '--work-dir', '--shape')
def test_semantic_fpn_matches_pytorch(tmp_path):
    torch.manual_seed(0)
    check_deployments(tmp_path, SEM_FPN,
                      randomize_(build_from_config(SEM_FPN)),
                      BACKENDS, label_maps_match)


@pytest.mark.slow
@pytest.mark.runs(DEPLOY, '--backend', '--work-dir', '--shape')
def test_segformer_matches_pytorch(tmp_path):
    """SegFormer's head resizes every level to the size of its finest
    input, read from the map: right at sizes other than the traced one."""
    model = segmentor_with_spread_logits(SEGFORMER, images(tmp_path))
    check_deployments(tmp_path, SEGFORMER, model, BACKENDS, label_maps_match)


@pytest.mark.slow
@pytest.mark.runs(DEPLOY, '--label-map-in-graph')
def test_segformer_with_the_label_map_in_the_graph(tmp_path):
    """``deploy.py --label-map-in-graph``: the graph outputs the label map
    ``(N, 1, H, W)`` (mmdeploy's resize + argmax), recorded in the work
    dir's deploy config, and the deployed model still answers as PyTorch."""
    import onnxruntime as ort
    from mmengine.config import Config
    model = segmentor_with_spread_logits(SEGFORMER, images(tmp_path))
    check_deployments(tmp_path, SEGFORMER, model, ['onnxruntime'],
                      label_maps_match,
                      ('--shape', '160', '224', '--label-map-in-graph'))
    deployment = Deployment.from_work_dir(str(tmp_path / 'onnxruntime'))
    assert Config.fromfile(
        deployment.deploy_cfg).codebase_config.with_argmax is True
    session = ort.InferenceSession(deployment.backend_files[0])
    (output, ) = session.run(
        None, {'input': np.zeros((1, 3, 96, 128), np.float32)})
    assert output.shape == (1, 1, 96, 128)


@pytest.mark.slow
@pytest.mark.runs(DEPLOY, '--backend', '--work-dir', '--shape')
def test_upernet_matches_pytorch(tmp_path):
    config = variant(tmp_path, *UPERNET)
    torch.manual_seed(0)
    check_deployments(tmp_path, config, randomize_(build_from_config(config)),
                      BACKENDS, label_maps_match)


@pytest.mark.slow
@pytest.mark.runs(DEPLOY, '--backend', '--work-dir', '--shape')
def test_classifier_matches_pytorch(tmp_path):
    """The quickstart classifier: its first export in a fresh interpreter
    imports modules that register ``torch.fx.wrap`` functions inside
    mmdeploy's rewriter context, which mmdeploy 1.3.1 could not leave on
    torch 2.14 (``KeyError: -1``)."""
    config = variant(tmp_path, *CLASSIFIER_ANY_SIZE)
    torch.manual_seed(0)
    check_deployments(tmp_path, config, randomize_(build_from_config(config)),
                      BACKENDS, scores_match)


@pytest.fixture(scope='module')
def retinanet_checkpoint(tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp('ckpt') / 'retinanet.pth')
    torch.save(dict(state_dict=build_from_config(RETINANET).state_dict()),
               path)
    return path


def run_deploy(*args) -> int:
    return load_tool('deployment', 'deploy.py').main([str(a) for a in args])


def test_unsupported_backend_is_named_with_the_allowed_ones(
        tmp_path, retinanet_checkpoint, capsys):
    work_dir = tmp_path / 'out'
    assert run_deploy(RETINANET, retinanet_checkpoint, '--backend',
                      'tensorrt', '--work-dir', work_dir) == 2
    assert "unsupported backend 'tensorrt': allowed are onnxruntime, " \
        'openvino' in capsys.readouterr().err
    assert not work_dir.exists()


@pytest.mark.parametrize('backend, opset', [('onnxruntime', 9),
                                             ('openvino', 21)])
def test_opset_outside_what_exporter_and_backend_run_is_refused(
        tmp_path, retinanet_checkpoint, backend, opset):
    with pytest.raises(DeployError, match=f'opset {opset}'):
        deploy_model(RETINANET, retinanet_checkpoint, backend,
                     str(tmp_path / 'out'), opset=opset)
    assert not (tmp_path / 'out').exists()


def test_checkpoint_of_another_model_is_refused(tmp_path, capsys):
    """A classifier checkpoint for the RetinaNet config, and a RetinaNet
    checkpoint with a head of another width: named, before exporting."""
    classifier = str(tmp_path / 'cls.pth')
    torch.save(dict(state_dict=build_from_config(CLASSIFIER).state_dict()),
               classifier)
    assert run_deploy(RETINANET, classifier, '--backend', 'onnxruntime',
                      '--work-dir', tmp_path / 'out') == 2
    err = capsys.readouterr().err
    assert f'{classifier} does not fit the EfficientViT backbone' in err
    weights = build_from_config(RETINANET).state_dict()
    weights['bbox_head.retina_cls.weight'] = torch.zeros(9, 64, 3, 3)
    other = str(tmp_path / 'other_head.pth')
    torch.save(dict(state_dict=weights), other)
    with pytest.raises(CheckpointError,
                       match='shape mismatch .*bbox_head.retina_cls.weight'):
        deploy_model(RETINANET, other, 'onnxruntime', str(tmp_path / 'out'))
    assert not (tmp_path / 'out').exists()


def test_missing_files_are_named(tmp_path, retinanet_checkpoint, capsys):
    missing = tmp_path / 'missing.pth'
    assert run_deploy(RETINANET, missing, '--backend', 'onnxruntime',
                      '--work-dir', tmp_path / 'out') == 2
    assert f'checkpoint {missing} does not exist' in capsys.readouterr().err
    with pytest.raises(DeployError, match='image .*nope.jpg: no such file'):
        deploy_model(RETINANET, retinanet_checkpoint, 'onnxruntime',
                     str(tmp_path / 'out'), img=str(tmp_path / 'nope.jpg'))
    assert not (tmp_path / 'out').exists()


def test_bad_image_and_unwritable_work_dir_are_named(tmp_path,
                                                      retinanet_checkpoint):
    """Checked before the export: an image that cannot be decoded, and a
    work dir that cannot be made (under a regular file, which fails for
    root too)."""
    corrupt = tmp_path / 'corrupt.jpg'
    corrupt.write_bytes(b'this is a text file, not a JPEG')
    with pytest.raises(DeployError, match='corrupt.jpg: not an image'):
        deploy_model(RETINANET, retinanet_checkpoint, 'onnxruntime',
                     str(tmp_path / 'out'), img=str(corrupt))
    assert not (tmp_path / 'out').exists()
    blocker = tmp_path / 'a_file'
    blocker.write_text('')
    with pytest.raises(DeployError, match='work_dir .*a_file/out.* is not '
                       'a writable folder'):
        deploy_model(RETINANET, retinanet_checkpoint, 'onnxruntime',
                     str(blocker / 'out'))


def test_failed_export_leaves_nothing_in_the_work_dir(
        tmp_path, retinanet_checkpoint, monkeypatch):
    """An export that dies half-way (here after writing a partial graph)
    leaves the work dir as it was."""
    import mmdeploy.apis

    def dies(img, work_dir, save_file, *args, **kwargs):
        open(osp.join(work_dir, save_file), 'wb').write(b'partial')
        raise RuntimeError('killed')

    monkeypatch.setattr(mmdeploy.apis, 'torch2onnx', dies)
    work_dir = tmp_path / 'out'
    work_dir.mkdir()
    (work_dir / 'keep.txt').write_text('mine')
    with pytest.raises(RuntimeError, match='killed'):
        deploy_model(RETINANET, retinanet_checkpoint, 'onnxruntime',
                     str(work_dir))
    assert os.listdir(work_dir) == ['keep.txt']


@pytest.mark.parametrize('config, task', [
    ('retinanet/retinanet_efficientvit-m4_fpn_1x_coco.py', 'detection'),
    ('mask_rcnn/mask-rcnn_efficientvit-m1_fpn_1x_coco.py', 'instance-seg'),
    ('examples/faster-rcnn_efficientvit-m0_fpn_1x_coco.py', 'detection'),
    ('sem_fpn/fpn_efficientvit-m2_4xb8-40k_ade20k-512x512.py',
     'segmentation'),
    ('segformer/segformer_efficientvit-m3_8xb2-160k_ade20k-512x512.py',
     'segmentation'),
    ('efficientvit/efficientvit-m5_8xb256_in1k.py', 'classification'),
])
def test_each_config_gets_a_dynamic_deploy_config(config, task):
    from mmengine.config import Config
    model_cfg = Config.fromfile(osp.join(CONFIGS, config))
    assert deploy_task(model_cfg) == task
    for backend in BACKENDS:
        cfg = deploy_config(model_cfg, backend)
        assert cfg.backend_config.type == backend
        assert cfg.onnx_config.dynamic_axes['input'] == {
            0: 'batch', 2: 'height', 3: 'width'}
        assert set(cfg.onnx_config.output_names) <= set(
            cfg.onnx_config.dynamic_axes)


def test_mmdeploy_exports_with_the_torchscript_exporter(tmp_path):
    """torch.onnx.export defaults to the dynamo exporter (which needs
    onnxscript and skips mmdeploy's rewriters); inside mmdeploy's rewriter
    context a call without ``dynamo=`` gets ``dynamo=False``, and only
    there."""
    from mmdeploy.core import RewriterContext

    from evit_mm.deploy.mmdeploy_plugin import register_rewriters
    register_rewriters()
    calls = []
    with mock_export(calls):
        with RewriterContext(cfg={}, backend='onnxruntime'):
            torch.onnx.export(torch.nn.ReLU(), (torch.ones(1), ),
                              str(tmp_path / 'a.onnx'))
            torch.onnx.export(torch.nn.ReLU(), (torch.ones(1), ),
                              str(tmp_path / 'b.onnx'), dynamo=True)
        torch.onnx.export(torch.nn.ReLU(), (torch.ones(1), ),
                          str(tmp_path / 'c.onnx'))
    assert calls == [False, True, None]


def test_rewriter_context_survives_a_first_import_of_fx_wrap(
        tmp_path, monkeypatch):
    """A module that registers a ``torch.fx.wrap`` function, imported for
    the first time inside mmdeploy's rewriter context (as mmseg's timm
    backbone is on a first export): the context is left without error and
    the module's registration stays."""
    import torch.fx._symbolic_trace as symbolic_trace
    from mmdeploy.core import RewriterContext
    (tmp_path / 'wraps_a_leaf.py').write_text(
        'import torch.fx\n\n\n@torch.fx.wrap\ndef leaf(x):\n    return x\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    with private_fx_wrap_bookkeeping():
        with RewriterContext(cfg={}, backend='onnxruntime'):
            import wraps_a_leaf
    assert symbolic_trace._wrapped_fns_to_patch[
        (id(wraps_a_leaf.__dict__), 'leaf')] is wraps_a_leaf.__dict__


def mock_export(calls: list):
    """torch.onnx.export recording its ``dynamo`` argument."""
    from unittest import mock
    return mock.patch.object(
        torch.onnx, 'export',
        lambda *args, **kwargs: calls.append(kwargs.get('dynamo')))


@pytest.mark.parametrize('size', [(3, 4), (7, 7), (13, 20), (25, 6)])
def test_dynamic_adaptive_pooling_equals_torch(size):
    """The pooling UperNet is exported with, eager and traced at another
    size, equals torch's adaptive average pooling at every size."""
    from evit_mm.deploy.rewriters import adaptive_avg_pool2d_any_size
    x = torch.randn(2, 3, *size)
    traced = torch.jit.trace(
        lambda t: adaptive_avg_pool2d_any_size(t, 6), torch.randn(1, 3, 9, 11))
    assert torch.allclose(adaptive_avg_pool2d_any_size(x, (6, 3)),
                          torch.nn.functional.adaptive_avg_pool2d(x, (6, 3)),
                          atol=1e-5)
    assert torch.allclose(traced(x), torch.nn.functional.adaptive_avg_pool2d(
        x, 6), atol=1e-5)


@pytest.mark.parametrize('size', [(64, 64), (65, 100), (200, 312)])
def test_graph_padding_equals_mmdet_batch_padding(size):
    """The padding a detector's graph does, traced at another size, equals
    the padding mmdet's data preprocessor does to a batch."""
    from mmdet.models.data_preprocessors import DetDataPreprocessor

    from evit_mm.deploy.rewriters import pad_to_multiple
    preprocessor = DetDataPreprocessor(pad_size_divisor=64, pad_value=0.5)
    image = torch.randint(0, 256, (3, *size), dtype=torch.uint8)
    expected = preprocessor(dict(inputs=[image]))['inputs']
    traced = torch.jit.trace(lambda t: pad_to_multiple(t, 64, 0.5),
                             torch.randn(1, 3, 70, 90))
    assert torch.equal(traced(image[None].float()), expected)


@pytest.mark.parametrize('config, detector', [
    ('rtmdet/rtmdet-ins_efficientvit-m0_8xb32-300e_coco.py', True),
    ('mask_rcnn/mask-rcnn_efficientvit-m0_fpn_1x_coco.py', True),
    ('segformer/segformer_efficientvit-m3_8xb2-160k_ade20k-512x512.py', False),
])
def test_detectors_pad_in_the_graph(config, detector):
    """A detector's deployed preprocessing stops padding and its deploy
    config tells the graph to pad as the model did; a segmentor's padding
    is left as it is."""
    from mmengine.config import Config

    from evit_mm.deploy.mmdeploy_export import move_padding_into_graph
    model_cfg = Config.fromfile(osp.join(CONFIGS, config))
    before = model_cfg.model.data_preprocessor.to_dict()
    deploy_cfg = deploy_config(model_cfg, 'onnxruntime')
    move_padding_into_graph(model_cfg, deploy_cfg)
    after = model_cfg.model.data_preprocessor
    if detector:
        assert before['pad_size_divisor'] > 1
        assert after.pad_size_divisor == 1
        assert deploy_cfg.codebase_config[GRAPH_PADDING] == dict(
            size_divisor=before['pad_size_divisor'], value=0)
    else:
        assert after.to_dict() == before
        assert GRAPH_PADDING not in deploy_cfg.codebase_config


@pytest.mark.parametrize('in_graph', [False, True])
def test_deploy_places_a_segmentors_label_map(in_graph):
    """The shipped deploy config keeps mmdeploy's label map in the graph
    (what mmdeploy's own tool exports); deploy.py records the head's logits
    as the graph's output unless asked for the label map, and refuses the
    option for other tasks."""
    from mmengine.config import Config

    from evit_mm.deploy.mmdeploy_export import place_label_map
    segmentor = Config.fromfile(osp.join(
        CONFIGS, 'segformer/segformer_efficientvit-m0_8xb2-160k_ade20k-'
        '512x512.py'))
    deploy_cfg = deploy_config(segmentor, 'onnxruntime')
    assert deploy_cfg.codebase_config.with_argmax is True
    assert RESIZE_LOGITS not in deploy_cfg.codebase_config
    place_label_map(segmentor, deploy_cfg, in_graph)
    assert deploy_cfg.codebase_config[RESIZE_LOGITS] is in_graph
    assert deploy_cfg.codebase_config.with_argmax is in_graph
    detector = Config.fromfile(osp.join(
        CONFIGS, 'retinanet/retinanet_efficientvit-m0_fpn_1x_coco.py'))
    detector_cfg = deploy_config(detector, 'onnxruntime')
    if in_graph:
        with pytest.raises(DeployError, match='for segmentors'):
            place_label_map(detector, detector_cfg, in_graph)
    else:
        place_label_map(detector, detector_cfg, in_graph)
        assert RESIZE_LOGITS not in detector_cfg.codebase_config
