"""Logit parity of the mmpretrain classifier with the official EfficientViT.

timm's ``efficientvit_mX`` (verified by its authors against the official
model) gets random, non-trivial weights, including BatchNorm statistics and
attention biases. Its state dict is saved in timm's layout and, renamed here
independently of evit_mm, in the official (microsoft/Cream) layout. Both are
loaded into the classifier built from ``configs/efficientvit`` directly (as
``tools/test.py`` / ``load_from`` do) and after
``tools/model_converters/efficientvit_to_mm.py``, in normal and deploy mode.

The reference logits are timm's computed in float64. Run in float64 too,
our classifier must agree to 1e-10 (relative): the same function, not an
approximation. In float32 it must be as close to those exact logits as
rounding allows: under 1e-5, or under twice the error of timm's own float32
logits where those are further off (with these weights timm's float32
logits are about 4e-6 to 1e-5 from the exact ones, printed with ``-s``,
so two float32 implementations differ by about as much).
"""
import copy
import os.path as osp
import re
import runpy
import sys

import pytest
import torch

pytest.importorskip('mmpretrain')
timm = pytest.importorskip('timm')

from mmengine.config import Config  # noqa: E402
from mmengine.runner import load_checkpoint  # noqa: E402
from mmpretrain.registry import MODELS  # noqa: E402

import evit_mm  # noqa: E402,F401
from reference import relative_error  # noqa: E402

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONVERTER = osp.join(REPO, 'tools', 'model_converters',
                     'efficientvit_to_mm.py')
ARCHS = ['m0', 'm1', 'm2', 'm3', 'm4', 'm5']
# m0 runs in the fast suite, the other archs in the slow one.
ARCH_PARAMS = [ARCHS[0]] + [
    pytest.param(arch, marks=pytest.mark.slow) for arch in ARCHS[1:]
]
EXACT_TOLERANCE = 1e-10
FLOAT32_TOLERANCE = 1e-5

# Every test builds in mmpretrain's scope, whatever scope others left.
pytestmark = pytest.mark.usefixtures('mmpretrain_scope')


def randomize(model: torch.nn.Module, seed: int) -> None:
    """Random weights in a well-conditioned regime: random BN affine
    parameters (also where the official init is zero), attention biases and
    linear/SE biases, then BN statistics measured on random images (so they
    are neither 0/1 nor degenerate and the logits depend on the input)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if name.endswith('bn.weight'):
                tensor.copy_(
                    torch.rand(tensor.shape, generator=generator) + .5)
            elif name.endswith(('bn.bias', 'attention_biases', 'linear.bias',
                                'fc1.bias', 'fc2.bias')):
                tensor.copy_(
                    torch.randn(tensor.shape, generator=generator) * 0.5)
        norms = [m for m in model.modules()
                 if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
        for norm in norms:
            norm.reset_running_stats()
            norm.momentum = None  # cumulative average over the batches
        model.train()
        model(torch.randn(4, 3, 224, 224, generator=generator))
        for norm in norms:
            norm.momentum = 0.1
        model.eval()


def timm_to_official(state_dict: dict) -> dict:
    """timm ``efficientvit_msra`` names -> microsoft/Cream names, plus the
    derived ``attention_bias_idxs`` buffers the official files carry."""
    official = {}
    for key, value in state_dict.items():
        key = re.sub(r'^patch_embed\.conv(\d)\.',
                     lambda m: f'patch_embed.{2 * int(m.group(1)) - 2}.', key)
        match = re.match(r'^stages\.(\d)\.(.*)$', key)
        if match:
            stage, rest = int(match.group(1)), match.group(2)
            for index, part in enumerate(('res1', 'patchmerge', 'res2')):
                rest = re.sub(rf'^downsample\.{part}\.', f'{index}.', rest)
            rest = re.sub(r'^blocks\.(\d+)\.',
                          lambda m: f'{int(m.group(1)) + 3 * (stage > 0)}.',
                          rest)
            key = f'blocks{stage + 1}.{rest}'
        key = re.sub(r'\.conv\.weight$', '.c.weight', key)
        key = re.sub(r'^head\.linear\.', 'head.l.', key)
        official[key] = value
        if key.endswith('attention_biases'):
            side = int(round(value.shape[1]**0.5))
            official[key.replace('attention_biases', 'attention_bias_idxs')] \
                = torch.randint(0, side * side, (side * side, side * side))
    return official


def build_classifier(config: str, deploy: bool = False) -> torch.nn.Module:
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'efficientvit', config))
    cfg.model.backbone.deploy = deploy
    cfg.model.head.deploy = deploy
    return MODELS.build(cfg.model).eval()


def convert(src: str, dst: str, *options: str) -> None:
    argv = sys.argv
    sys.argv = [CONVERTER, src, dst, *options]
    try:
        runpy.run_path(CONVERTER, run_name='__main__')
    finally:
        sys.argv = argv


@pytest.fixture(scope='module')
def images() -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    return torch.randn(2, 3, 224, 224, generator=generator)


@pytest.fixture(scope='module', params=ARCH_PARAMS)
def reference(request, images, tmp_path_factory):
    """timm model with random weights, its files in both layouts, and its
    logits on ``images``."""
    arch = request.param
    model = timm.create_model(f'efficientvit_{arch}', img_size=224).eval()
    randomize(model, seed=ARCHS.index(arch))
    folder = tmp_path_factory.mktemp(arch)
    files = dict(timm=str(folder / 'timm.pth'),
                 official=str(folder / 'official.pth'))
    torch.save(model.state_dict(), files['timm'])
    torch.save({'model': timm_to_official(model.state_dict())},
               files['official'])
    with torch.no_grad():
        logits = copy.deepcopy(model).double()(images.double())
        rounding = relative_error(model(images).double(), logits)
    print(f'{arch}: timm float32 logits {rounding:.2e} from exact')
    # Non-trivial weights: the two images get clearly different logits.
    assert (logits[0] - logits[1]).abs().max() > 0.1 * logits.abs().max()
    return dict(arch=arch, files=files, logits=logits, rounding=rounding,
                folder=folder)


def assert_exact(model: torch.nn.Module, images: torch.Tensor,
                 logits: torch.Tensor) -> None:
    """``model``, run in float64, computes the exact ``logits``."""
    with torch.no_grad():
        exact = model.double()(images.double())
    assert relative_error(exact, logits) < EXACT_TOLERANCE


def assert_within_rounding(model: torch.nn.Module, images: torch.Tensor,
                           logits: torch.Tensor, rounding: float) -> None:
    """``model`` in float32 is as close to the exact ``logits`` as rounding
    allows (``rounding``: the reference's own float32 error)."""
    with torch.no_grad():
        approximate = model(images).double()
    assert relative_error(approximate, logits) < max(FLOAT32_TOLERANCE,
                                                     2 * rounding)


def assert_matches(model: torch.nn.Module, images: torch.Tensor,
                   logits: torch.Tensor, rounding: float) -> None:
    """Exact in float64 and within rounding in float32."""
    assert_within_rounding(model, images, logits, rounding)
    assert_exact(copy.deepcopy(model), images, logits)


def config_of(arch: str) -> str:
    return f'efficientvit-{arch}_8xb256_in1k.py'


@pytest.mark.parametrize('layout', ['official', 'timm'])
def test_direct_load_matches_official_logits(reference, images, layout):
    model = build_classifier(config_of(reference['arch']))
    load_checkpoint(model, reference['files'][layout], strict=True,
                    logger='silent')
    assert_matches(model, images, reference['logits'], reference['rounding'])


def test_converted_checkpoint_matches_official_logits(reference, images):
    converted = str(reference['folder'] / 'converted.pth')
    convert(reference['files']['official'], converted)
    model = build_classifier(config_of(reference['arch']))
    load_checkpoint(model, converted, strict=True, logger='silent')
    assert_matches(model, images, reference['logits'], reference['rounding'])


def _switch_to_deploy(model: torch.nn.Module) -> torch.nn.Module:
    model.backbone.switch_to_deploy()
    model.head.switch_to_deploy()
    assert not any('.bn.' in k for k in model.state_dict())
    return model


def test_deploy_mode_matches_official_logits(reference, images):
    # Fused after loading (in float64, fusion is exact) ...
    model = build_classifier(config_of(reference['arch']))
    load_checkpoint(model, reference['files']['official'], strict=True,
                    logger='silent')
    assert_exact(_switch_to_deploy(copy.deepcopy(model).double()), images,
                 reference['logits'])
    assert_within_rounding(_switch_to_deploy(model), images,
                           reference['logits'], reference['rounding'])
    # ... and built fused, loading the converter's --deploy output (fused
    # in float32).
    fused = str(reference['folder'] / 'fused.pth')
    convert(reference['files']['timm'], fused, '--deploy')
    model = build_classifier(config_of(reference['arch']), deploy=True)
    load_checkpoint(model, fused, strict=True, logger='silent')
    assert_within_rounding(model, images, reference['logits'],
                           reference['rounding'])


def test_official_distilled_checkpoint_averages_both_heads(tmp_path, images):
    """An official checkpoint trained with distillation (``head_dist``) loads
    into the distillation config; its logits are the mean of both heads."""
    timm_model = timm.create_model('efficientvit_m4', img_size=224).eval()
    randomize(timm_model, seed=10)
    state = timm_to_official(timm_model.state_dict())
    generator = torch.Generator().manual_seed(11)
    dist = {
        'bn.weight': torch.rand(384, generator=generator) + 0.5,
        'bn.bias': torch.randn(384, generator=generator) * 0.2,
        'bn.running_mean': torch.randn(384, generator=generator) * 0.2,
        'bn.running_var': torch.rand(384, generator=generator) + 0.5,
        'bn.num_batches_tracked': torch.tensor(7),
        'l.weight': torch.randn(1000, 384, generator=generator) * 0.05,
        'l.bias': torch.randn(1000, generator=generator) * 0.2,
    }
    state.update({f'head_dist.{k}': v for k, v in dist.items()})
    path = str(tmp_path / 'distilled.pth')
    torch.save({'model': state}, path)

    cfg = Config.fromfile(
        osp.join(REPO, 'configs', 'efficientvit',
                 'efficientvit-m4-distilled_8xb256_in1k.py'))
    cfg.model.teacher = dict(
        type='TimmClassifier', model_name='test_resnet', num_classes=1000)
    cfg.model.teacher_checkpoint = None
    model = MODELS.build(cfg.model).eval()
    load_checkpoint(model, path, strict=True, logger='silent')

    def official_logits(dtype: torch.dtype) -> torch.Tensor:
        reference = copy.deepcopy(timm_model).to(dtype)
        x = images.to(dtype)
        head = {k: v.to(dtype) for k, v in dist.items()}
        pooled = reference.forward_head(
            reference.forward_features(x), pre_logits=True)
        normed = (pooled - head['bn.running_mean']) / torch.sqrt(
            head['bn.running_var'] + 1e-5) * head['bn.weight'] + \
            head['bn.bias']
        dist_logits = normed @ head['l.weight'].T + head['l.bias']
        return (reference(x) + dist_logits) / 2

    with torch.no_grad():
        exact = official_logits(torch.float64)
        rounding = relative_error(
            official_logits(torch.float32).double(), exact)
    assert_matches(model, images, exact, rounding)
