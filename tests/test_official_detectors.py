"""The official COCO detectors of EfficientViT's release (RetinaNet-M4,
Mask R-CNN-M4: mmdet 2.x files with the official downstream code's names)
load completely into evit_mm's configs through every path a user takes, and
give the official code's features; a checkpoint that would leave the
backbone or the neck partly at its initialisation is an error.

The release files are not downloaded: each test writes a file with their
layout (``meta`` with ``CLASSES``, ``state_dict``, ``optimizer``) and
random weights. The backbone part is timm's ``efficientvit_m4`` (7x7
windows in every stage, as in the official downstream model) under the
official names, the neck part :class:`reference.OfficialEfficientViTFPN`.
"""
import json
import os.path as osp
import pickle
from collections import OrderedDict

import cv2
import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.config import Config

from evit_mm.checkpoint import CheckpointError
from evit_mm.engine import harden_runtime
from reference import (OFFICIAL_DETECTORS, OfficialEfficientViTFPN,
                       official_state_dict, relative_error,
                       timm_features, timm_model)
from tool_helpers import REPO_ROOT, run_script

CONVERTER = 'tools/model_converters/efficientvit_to_mm.py'
# The official detectors: evit_mm's config, the release file's name and the
# official neck's settings (configs/*_efficientvit_m4_fpn_1x_coco.py of
# microsoft/Cream's EfficientViT/downstream).
DETECTORS = {
    'retinanet':
    dict(config='configs/retinanet/retinanet_efficientvit-m4_fpn_1x_coco.py',
         file=osp.basename(OFFICIAL_DETECTORS['retinanet'][0]),
         neck=dict(num_extra_trans_convs=1, extra_on_input=True),
         head='bbox_head.retina_cls.weight'),
    'mask_rcnn':
    dict(config='configs/mask_rcnn/mask-rcnn_efficientvit-m4_fpn_1x_coco.py',
         file=osp.basename(OFFICIAL_DETECTORS['mask_rcnn'][0]),
         neck=dict(num_extra_trans_convs=2),
         head='roi_head.mask_head.conv_logits.weight'),
}
M4_CHANNELS = [128, 256, 384]
INPUT_SIZE = (512, 672)  # a size the official code runs (7 < every map)


def _config(name: str) -> str:
    return osp.join(REPO_ROOT, DETECTORS[name]['config'])


def _detector(name: str, arch: str = 'm4') -> nn.Module:
    """evit_mm's detector of ``name`` with ``arch``, untrained."""
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    register_all_modules()
    cfg = Config.fromfile(_config(name))
    cfg.model.backbone.init_cfg = None
    if arch != 'm4':
        cfg.model.backbone.arch = arch
        cfg.model.neck.in_channels = _arch_channels(arch)
    return MODELS.build(cfg.model)


def _arch_channels(arch):
    from evit_mm.models.backbones.efficientvit import EfficientViT
    return list(EfficientViT.arch_zoo[arch]['embed_dims'])


def _coco_classes():
    from mmdet.datasets import CocoDataset
    return tuple(CocoDataset.METAINFO['classes'])


def _well_conditioned_(module: nn.Module, seed: int) -> nn.Module:
    """Conv weights of variance 1 / (inputs per output), small random
    biases."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for conv in module.modules():
            if isinstance(conv, nn.ConvTranspose2d):  # kernel == stride
                fan_in = conv.in_channels
            elif isinstance(conv, nn.Conv2d):
                fan_in = conv.weight[0].numel()
            else:
                continue
            conv.weight.copy_(
                torch.randn(conv.weight.shape, generator=generator) /
                fan_in**0.5)
            if conv.bias is not None:
                conv.bias.copy_(
                    torch.randn(conv.bias.shape, generator=generator) * .1)
    return module


class Official:
    """An official release detector file with random weights, and the
    official code's backbone and neck holding the same weights."""

    def __init__(self, name: str, path: str, seed: int = 0) -> None:
        self.name, self.path = name, path
        self.backbone = timm_model('m4', img_size=448, seed=seed)
        self.neck = _well_conditioned_(
            OfficialEfficientViTFPN(M4_CHANNELS, 256, 5,
                                    **DETECTORS[name]['neck']), seed).eval()
        heads = _well_conditioned_(_detector(name), seed).state_dict()
        state = OrderedDict(
            ('backbone.' + k, v)
            for k, v in official_state_dict(self.backbone).items()
            if not k.startswith('head'))
        state.update(
            ('neck.' + k, v) for k, v in self.neck.state_dict().items())
        state.update((k, v) for k, v in heads.items()
                     if not k.startswith(('backbone.', 'neck.')))
        self.state_dict = state
        self.save(path, state)

    @staticmethod
    def save(path: str, state: dict) -> None:
        """Write ``state`` in the release files' layout (mmcv 1.x's
        ``save_checkpoint``)."""
        first = next(iter(state.values()))
        torch.save(
            dict(meta=dict(mmdet_version='2.25.0', mmcv_version='1.6.0',
                           CLASSES=_coco_classes(), epoch=12, iter=87960,
                           time='Mon Jan  9 10:00:00 2023'),
                 state_dict=state,
                 optimizer=dict(
                     state={0: dict(step=torch.tensor(87960.),
                                    exp_avg=torch.zeros_like(first),
                                    exp_avg_sq=torch.zeros_like(first))},
                     param_groups=[dict(lr=1e-6, betas=(0.9, 0.999),
                                        eps=1e-8, weight_decay=0.05,
                                        amsgrad=False, params=[0])])),
            path)

    def features(self, x: torch.Tensor):
        """The official backbone + neck outputs."""
        with torch.no_grad():
            return self.neck(timm_features(self.backbone, x))


@pytest.fixture(params=sorted(DETECTORS))
def official(request, tmp_path):
    return Official(request.param,
                    str(tmp_path / DETECTORS[request.param]['file']))


def _features(model: nn.Module, x: torch.Tensor):
    model.eval()
    with torch.no_grad():
        return model.neck(model.backbone(x))


def _assert_same_state(model: nn.Module, expected: nn.Module) -> None:
    got, want = model.state_dict(), expected.state_dict()
    assert list(got) == list(want)
    for key in want:
        assert torch.equal(got[key], want[key]), key


def test_init_detector_gives_the_official_features(official, capsys):
    """mmdet's ``init_detector``: backbone + neck equal to the official code
    on the same weights (relative error <= 1e-5), the heads and the classes
    loaded, and no warning of keys that do not match."""
    from mmdet.apis import init_detector
    model = init_detector(_config(official.name), official.path,
                          device='cpu')
    printed = capsys.readouterr()
    assert 'do not match' not in printed.out + printed.err
    x = torch.randn(1, 3, *INPUT_SIZE)
    got, expected = _features(model, x), official.features(x)
    assert [o.shape[1:] for o in got] == [o.shape[1:] for o in expected]
    errors = [relative_error(a, b) for a, b in zip(got, expected)]
    print(f'{official.name}: relative errors per level {errors}')
    assert max(errors) <= 1e-5
    head = DETECTORS[official.name]['head']
    assert torch.equal(model.state_dict()[head], official.state_dict[head])
    assert model.dataset_meta['classes'] == _coco_classes()


@pytest.mark.slow
@pytest.mark.runs(CONVERTER)
def test_inferencer_load_from_and_converter_load_the_same(official,
                                                          tmp_path):
    """``DetInferencer(weights=FILE)``, a runner's ``load_from=FILE`` and
    the converter's mmdet 3 file (loaded strictly) give the model that
    ``init_detector`` gives."""
    from mmdet.apis import DetInferencer, init_detector
    from mmengine.runner import Runner, load_checkpoint
    config = _config(official.name)
    expected = init_detector(config, official.path, device='cpu')
    inferencer = DetInferencer(model=config, weights=official.path,
                               device='cpu', show_progress=False)
    _assert_same_state(inferencer.model, expected)

    cfg = harden_runtime(Config.fromfile(config))
    cfg.model.backbone.init_cfg = None
    cfg.work_dir = str(tmp_path / 'work')
    cfg.load_from = official.path
    runner = Runner.from_cfg(cfg)
    runner.load_or_resume()
    _assert_same_state(runner.model, expected)

    converted = str(tmp_path / 'converted.pth')
    output = run_script(CONVERTER, official.path, converted)
    assert 'official release detector layout' in output
    model = _detector(official.name)
    checkpoint = load_checkpoint(model, converted, map_location='cpu',
                                 strict=True)
    _assert_same_state(model, expected)
    assert checkpoint['meta']['dataset_meta']['classes'] == _coco_classes()
    assert 'optimizer' not in checkpoint
    assert not any('attention_bias_idxs' in k
                   for k in checkpoint['state_dict'])


def _tiny_coco(root) -> str:
    """One 96x128 image and a COCO annotation file with COCO's 80
    categories (ids as in COCO) and one box."""
    image = np.random.default_rng(0).integers(0, 255, (96, 128, 3),
                                              dtype=np.uint8)
    root.joinpath('val').mkdir(parents=True)
    root.joinpath('annotations').mkdir()
    cv2.imwrite(str(root / 'val' / '000000.jpg'), image)
    coco_ids = [i for i in range(1, 91) if i not in (
        12, 26, 29, 30, 45, 66, 68, 69, 71, 83)]
    (root / 'annotations' / 'val.json').write_text(json.dumps(dict(
        images=[dict(id=1, file_name='000000.jpg', width=128, height=96)],
        annotations=[dict(id=1, image_id=1, category_id=1,
                          bbox=[10, 10, 40, 30], area=1200, iscrowd=0,
                          segmentation=[[10, 10, 50, 10, 50, 40, 10, 40]])],
        categories=[dict(id=i, name=n) for i, n in zip(coco_ids,
                                                       _coco_classes())])))
    return str(root)


def _test_tool_options(root, work_dir, *more):
    return ['--work-dir', str(work_dir), '--cfg-options',
            f'test_dataloader.dataset.data_root={root}/',
            'test_dataloader.dataset.ann_file=annotations/val.json',
            'test_dataloader.dataset.data_prefix.img=val/',
            'test_dataloader.dataset.pipeline.1.scale=(336,256)',
            f'test_evaluator.ann_file={root}/annotations/val.json', *more]


@pytest.mark.slow
@pytest.mark.parametrize('name', ['retinanet'])
@pytest.mark.runs('tools/test.py')
def test_test_tool_loads_the_release_file(name, tmp_path):
    """``tools/test.py CONFIG FILE`` in a fresh process: it loads the whole
    file (no warning of keys that do not match) and predicts what the model
    of ``init_detector`` predicts on the same image."""
    from mmdet.apis import inference_detector, init_detector
    official = Official(name, str(tmp_path / DETECTORS[name]['file']))
    root = _tiny_coco(tmp_path / 'coco')
    out = str(tmp_path / 'predictions.pkl')
    log = run_script('tools/test.py', _config(name), official.path,
                     '--out', out,
                     *_test_tool_options(root, tmp_path / 'work',
                                         'model.test_cfg.score_thr=0'))
    assert 'do not match' not in log
    with open(out, 'rb') as f:
        tool, = pickle.load(f)
    cfg = Config.fromfile(_config(name))
    cfg.test_dataloader.dataset.pipeline[1].scale = (336, 256)
    cfg.model.test_cfg.score_thr = 0
    model = init_detector(cfg, official.path, device='cpu')
    expected = inference_detector(
        model, osp.join(root, 'val', '000000.jpg')).pred_instances
    assert len(expected.scores) == len(tool['pred_instances']['scores']) > 0
    torch.testing.assert_close(tool['pred_instances']['bboxes'],
                               expected.bboxes, rtol=1e-4, atol=1e-3)
    torch.testing.assert_close(tool['pred_instances']['scores'],
                               expected.scores, rtol=1e-4, atol=1e-5)


# ------------------------------------------------------ no silent half loads


def _truncated_neck(tmp_path):
    """An evit_mm RetinaNet-M4 checkpoint without one neck conv."""
    state = _detector('retinanet').state_dict()
    for key in ('neck.fpn_convs.2.conv.weight', 'neck.fpn_convs.2.conv.bias'):
        del state[key]
    path = str(tmp_path / 'truncated_neck.pth')
    torch.save(dict(state_dict=state, meta={}), path)
    return path, ["the EfficientViTFPN neck at 'neck.'",
                  "missing (2): ['fpn_convs.2.conv.weight', "
                  "'fpn_convs.2.conv.bias']"]


def _official_without_a_block(tmp_path):
    """An official release detector whose last backbone block is gone."""
    path = str(tmp_path / 'official.pth')
    official = Official('retinanet', path)
    state = OrderedDict((k, v) for k, v in official.state_dict.items()
                        if not k.startswith('backbone.blocks3.5.'))
    Official.save(path, state)
    return path, ['official release detector layout',
                  "does not fit the EfficientViT backbone (arch 'm4')",
                  'missing', 'stages.2.blocks.2.']


def _other_arch(tmp_path):
    """An evit_mm RetinaNet-M0 checkpoint."""
    path = str(tmp_path / 'retinanet_m0.pth')
    torch.save(dict(state_dict=_detector('retinanet', 'm0').state_dict()),
               path)
    return path, ["does not fit the EfficientViT backbone (arch 'm4')",
                  "it looks like arch 'm0'", 'shape mismatch']


def _timm_classifier(tmp_path):
    """timm's ImageNet EfficientViT-M4 (a classifier, not a detector)."""
    path = str(tmp_path / 'timm_m4.pth')
    torch.save(timm_model('m4').state_dict(), path)
    return path, ['timm layout']


def _mmpretrain_classifier(tmp_path):
    """An mmpretrain classifier with the detector's backbone."""
    path = str(tmp_path / 'classifier.pth')
    state = OrderedDict(
        (k, v) for k, v in _detector('retinanet').state_dict().items()
        if k.startswith('backbone.'))
    state['head.fc.weight'] = torch.zeros(1000, 384)
    state['head.fc.bias'] = torch.zeros(1000)
    torch.save(dict(state_dict=state), path)
    return path, ['(mmpretrain classifier layout) has no weights for the '
                  "EfficientViTFPN neck at 'neck.'", "init_cfg=dict("]


BAD_FILES = dict(truncated_neck=_truncated_neck,
                 official_without_a_block=_official_without_a_block,
                 other_arch=_other_arch, timm_classifier=_timm_classifier,
                 mmpretrain_classifier=_mmpretrain_classifier)


@pytest.mark.parametrize('case', sorted(BAD_FILES))
def test_half_loads_are_errors(case, tmp_path):
    """``init_detector`` and a training run's ``load_from`` refuse a file
    that would leave backbone or neck tensors at their initialisation,
    naming them and the file's layout."""
    from mmdet.apis import init_detector
    from mmengine.runner import Runner
    path, messages = BAD_FILES[case](tmp_path)
    with pytest.raises(CheckpointError) as init_error:
        init_detector(_config('retinanet'), path, device='cpu')
    cfg = harden_runtime(Config.fromfile(_config('retinanet')))
    cfg.model.backbone.init_cfg = None
    cfg.work_dir = str(tmp_path / 'work')
    cfg.load_from = path
    with pytest.raises(CheckpointError) as load_from_error:
        Runner.from_cfg(cfg).load_or_resume()
    for error in (init_error, load_from_error):
        for message in messages:
            assert message in str(error.value), str(error.value)


def test_heads_that_differ_stay_the_users_business(tmp_path, capsys):
    """A checkpoint whose head has another number of classes loads its
    backbone and neck; mmengine warns about the head, as for any model."""
    from mmdet.apis import init_detector
    state = _detector('retinanet').state_dict()
    state['bbox_head.retina_cls.weight'] = torch.zeros(27, 256, 3, 3)
    state['bbox_head.retina_cls.bias'] = torch.zeros(27)
    path = str(tmp_path / 'three_classes.pth')
    torch.save(dict(state_dict=state), path)
    model = init_detector(_config('retinanet'), path, device='cpu')
    assert torch.equal(model.state_dict()['neck.fpn_convs.2.conv.weight'],
                       state['neck.fpn_convs.2.conv.weight'])
    printed = capsys.readouterr()
    assert 'size mismatch for bbox_head.retina_cls.weight' in \
        printed.out + printed.err


# What tools/test.py says: its fit check (an exact fit) speaks first.
TOOL_MESSAGES = dict(
    truncated_neck="does not fit this RetinaNet: missing (2): "
    "['neck.fpn_convs.2.conv.weight', 'neck.fpn_convs.2.conv.bias']",
    official_without_a_block='(official release detector layout) does not '
    "fit the EfficientViT backbone (arch 'm4'): its weights match no preset "
    "arch; missing (91): ['stages.2.blocks.2.",
    other_arch="does not fit the EfficientViT backbone (arch 'm4'): it "
    "looks like arch 'm0'; shape mismatch",
    timm_classifier='(timm layout) holds weights of another model',
    mmpretrain_classifier="does not fit this RetinaNet: missing (38): "
    "['neck.lateral_convs.0.conv.weight'")


@pytest.mark.slow
@pytest.mark.runs('tools/test.py')
def test_test_tool_refuses_half_loads(tmp_path):
    """``tools/test.py`` in a fresh process names what does not fit."""
    root = _tiny_coco(tmp_path / 'coco')
    for case in sorted(BAD_FILES):
        path, _ = BAD_FILES[case](tmp_path)
        log = run_script('tools/test.py', _config('retinanet'), path,
                         *_test_tool_options(root, tmp_path / 'work'),
                         returncode=1)
        assert f'CheckpointError: {path}' in log, log[-3000:]
        assert TOOL_MESSAGES[case] in log, log[-3000:]
