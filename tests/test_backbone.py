"""EfficientViT backbone: numerics against timm, sizes, training controls,
deploy fusion, registries and argument errors."""
import math
import re
import subprocess
import sys
import textwrap

import pytest
import torch
from torch.nn.modules.batchnorm import _BatchNorm
from torch.utils.flop_counter import FlopCounterMode

from evit_mm.models import EfficientViT
from evit_mm.models.layers import Residual
from reference import (ARCHS, randomize_, relative_error, timm_features,
                       timm_model)

CLASSIFIER_WINDOWS = (7, 7, 4)


def loaded_pair(arch: str, img_size: int, tmp_path, **kwargs):
    """A random timm model and our backbone loaded from its checkpoint file
    through the public init_cfg path."""
    reference = timm_model(arch, img_size)
    path = tmp_path / f'timm_{arch}_{img_size}.pth'
    torch.save(reference.state_dict(), path)
    windows = CLASSIFIER_WINDOWS if img_size == 224 else 7
    model = EfficientViT(
        arch,
        window_size=windows,
        init_cfg=dict(type='Pretrained', checkpoint=str(path)),
        **kwargs)
    model.init_weights()
    return reference, model.eval()


def stage_sizes(height: int, width: int):
    """Expected map sizes: every stride-2 3x3 conv (padding 1) maps n to
    ceil(n / 2); four make the stem, one more per later stage."""
    sizes = []
    for halvings in (4, 5, 6):
        sizes.append((math.ceil(height / 2**halvings),
                      math.ceil(width / 2**halvings)))
    return sizes


@pytest.mark.parametrize('arch', ARCHS)
def test_matches_timm_classifier_windows(arch, tmp_path):
    reference, model = loaded_pair(arch, 224, tmp_path)
    fused = EfficientViT(arch, window_size=CLASSIFIER_WINDOWS)
    fused.load_state_dict(model.state_dict())
    fused.eval().switch_to_deploy()
    for size in [(224, 224), (160, 96)]:
        x = torch.randn(2, 3, *size)
        expected = timm_features(reference, x)
        with torch.no_grad():
            outputs, fused_outputs = model(x), fused(x)
        for out, fused_out, ref in zip(outputs, fused_outputs, expected):
            assert relative_error(out, ref) < 1e-5
            assert relative_error(fused_out, ref) < 1e-5


@pytest.mark.parametrize('arch', ARCHS)
def test_matches_timm_dense_windows(arch, tmp_path):
    reference, model = loaded_pair(arch, 448, tmp_path)
    for size in [(100, 150), (33, 47)]:
        x = torch.randn(2, 3, *size)
        with torch.no_grad():
            outputs = model(x)
        for out, ref in zip(outputs, timm_features(reference, x)):
            assert relative_error(out, ref) < 1e-5


@pytest.mark.parametrize('size', [(32, 32), (33, 47), (17, 200), (7, 5),
                                  (113, 64)])
def test_any_input_size(size):
    model = EfficientViT('m0').eval()
    with torch.no_grad():
        outputs = model(torch.randn(1, 3, *size))
    assert [tuple(o.shape[2:]) for o in outputs] == stage_sizes(*size)
    assert [o.shape[1] for o in outputs] == model.embed_dims
    assert all(torch.isfinite(o).all() for o in outputs)


@pytest.mark.slow
def test_detection_size():
    model = EfficientViT('m4').eval()
    with torch.no_grad():
        outputs = model(torch.randn(1, 3, 800, 1333))
    assert [tuple(o.shape[2:]) for o in outputs] == stage_sizes(800, 1333)


def test_batch_equals_single_images():
    model = randomize_(EfficientViT('m1')).eval()
    x = torch.randn(3, 3, 97, 130)
    with torch.no_grad():
        batched = model(x)
        singles = [model(x[i:i + 1]) for i in range(3)]
    for level, out in enumerate(batched):
        stacked = torch.cat([s[level] for s in singles])
        assert relative_error(out, stacked) < 1e-5


def test_out_indices_and_channels():
    model = EfficientViT('m2', out_indices=(-1, 0)).eval()
    outputs = model(torch.randn(1, 3, 64, 64))
    assert model.out_indices == [0, 2]
    assert model.out_channels == [128, 224]
    assert [o.shape[1] for o in outputs] == [128, 224]


def test_stages_after_the_last_output_are_neither_run_nor_trained():
    """RTMDet's levels (strides 8-32): out_indices=(0, 1) gives the full
    model's first two maps, never calls the last stage, which stays frozen
    in train mode (no unused parameters for DDP), and keeps its weights in
    the state dict."""
    full = randomize_(EfficientViT('m0', embed_out_strides=(8, ))).eval()
    model = EfficientViT('m0', embed_out_strides=(8, ), out_indices=(0, 1))
    model.load_state_dict(full.state_dict())
    calls = []
    model.stages[2].register_forward_hook(lambda *args: calls.append(1))
    x = torch.randn(2, 3, 96, 128)
    with torch.no_grad():
        expected = full(x)[:3]
        outputs = model.eval()(x)
    assert len(outputs) == 3 and not calls
    for out, ref in zip(outputs, expected):
        assert torch.equal(out, ref)
    model.train()
    assert not model.stages[2].training
    sum(o.mean() for o in model(x)).backward()
    for name, param in model.named_parameters():
        unused = name.startswith('stages.2.')
        assert param.requires_grad != unused, name
        assert (param.grad is None) == unused, name


def test_forward_hooks_keep_residual_branch_outputs():
    """Feature extraction: forward hooks on every residual branch keep the
    branch outputs (no copies, without autograd). After the whole forward
    they still hold what the branch computes from its input, recomputed
    afterwards, and each residual's output is its input plus that."""
    model = randomize_(EfficientViT('m0', embed_out_strides=(8, ))).eval()
    residuals = {
        name: module
        for name, module in model.named_modules()
        if isinstance(module, Residual)
    }
    inputs, kept = {}, {}
    handles = []
    for name, residual in residuals.items():
        handles.append(
            residual.register_forward_pre_hook(
                lambda mod, args, name=name: inputs.__setitem__(
                    name, args[0])))
        handles.append(
            residual.branch.register_forward_hook(
                lambda mod, args, out, name=name: kept.__setitem__(name, out)))
    with torch.no_grad():
        model(torch.randn(1, 3, 96, 128))
        for handle in handles:
            handle.remove()
        assert len(kept) == len(residuals) == 38
        for name, residual in residuals.items():
            expected = residual.branch(inputs[name])
            assert relative_error(kept[name], expected) < 1e-6, name
            assert relative_error(
                residual(inputs[name]), inputs[name] + expected) < 1e-6


def test_norm_and_act_cfg():
    """``norm_cfg`` and ``act_cfg`` choose every norm and activation layer
    (their arguments passed on); the default model's checkpoints load, and
    SyncBN in eval mode computes what BN does."""
    default = randomize_(EfficientViT('m0')).eval()
    model = EfficientViT(
        'm0',
        norm_cfg=dict(type='SyncBN', momentum=0.01),
        act_cfg=dict(type='GELU'))
    model.load_state_dict(default.state_dict())
    norms = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    assert len(norms) == sum(
        isinstance(m, _BatchNorm) for m in default.modules())
    assert all(
        isinstance(m, torch.nn.SyncBatchNorm) and m.momentum == 0.01
        and m.eps == 1e-5 for m in norms)
    relus = [m for m in default.modules() if isinstance(m, torch.nn.ReLU)]
    gelus = [m for m in model.modules() if isinstance(m, torch.nn.GELU)]
    assert len(gelus) == len(relus) > 0
    assert not any(isinstance(m, torch.nn.ReLU) for m in model.modules())
    relu_sync = EfficientViT('m0', norm_cfg=dict(type='SyncBN')).eval()
    relu_sync.load_state_dict(default.state_dict())
    x = torch.randn(1, 3, 96, 128)
    with torch.no_grad():
        for out, ref in zip(relu_sync(x), default(x)):
            assert torch.equal(out, ref)


def test_gradients_flow_in_train_mode():
    model = randomize_(EfficientViT('m0', drop_path_rate=.1)).train()
    sum(o.mean() for o in model(torch.randn(2, 3, 64, 80))).backward()
    for name, param in model.named_parameters():
        assert param.grad is not None, name
    assert any(param.grad.abs().sum() > 0
               for name, param in model.named_parameters()
               if name.endswith('attention_biases'))


@pytest.mark.parametrize('arch', ['m0', 'm5'])
def test_embed_outputs_are_the_embedding_activations(arch, tmp_path):
    """The stride-4 and stride-8 outputs equal timm's patch-embedding ReLU
    outputs (read by hooks), unfused and fused, and come first; the stage
    outputs stay timm's."""
    reference, model = loaded_pair(
        arch, 448, tmp_path, embed_out_strides=(8, 4))
    captured = []
    for name in ('relu2', 'relu3'):
        getattr(reference.patch_embed, name).register_forward_hook(
            lambda module, args, out: captured.append(out.clone()))
    x = torch.randn(2, 3, 75, 106)
    stages = timm_features(reference, x)
    dim = model.embed_dims[0]
    assert model.out_channels == [dim // 4, dim // 2, *model.embed_dims]
    assert model.out_strides == [4, 8, 16, 32, 64]
    fused = EfficientViT(arch, embed_out_strides=(4, 8), deploy=True).eval()
    model.switch_to_deploy()
    fused.load_state_dict(model.state_dict())
    for net in (model, fused):
        with torch.no_grad():
            outputs = net(x)
        assert [o.shape[1] for o in outputs] == net.out_channels
        assert [tuple(o.shape[2:]) for o in outputs[:2]] == [(19, 27),
                                                            (10, 14)]
        for out, ref in zip(outputs, [*captured, *stages]):
            assert out.is_contiguous()
            assert relative_error(out, ref) < 1e-5


def test_embed_outputs_cost_nothing_and_default_is_unchanged():
    plain = randomize_(EfficientViT('m0')).eval()
    extended = EfficientViT('m0', embed_out_strides=(8, )).eval()
    extended.load_state_dict(plain.state_dict())
    assert plain.out_channels == [64, 128, 192]
    assert extended.out_channels == [32, 64, 128, 192]
    x = torch.randn(1, 3, 96, 128)
    counts = []
    for model in (plain, extended):
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            outputs = model(x)
        counts.append(counter.get_total_flops())
    assert counts[0] == counts[1] > 0
    assert len(outputs) == 4
    for out, ref in zip(outputs[1:], plain(x)):
        assert torch.equal(out, ref)


@pytest.mark.parametrize('frozen_stages', [-1, 0, 1, 2, 3])
def test_frozen_stages(frozen_stages):
    model = EfficientViT(
        'm0', frozen_stages=frozen_stages, embed_out_strides=(4, 8)).train()
    frozen = [] if frozen_stages < 0 else [model.patch_embed] + list(
        model.stages[:frozen_stages])
    frozen_ids = {id(p) for m in frozen for p in m.parameters()}
    stats_before = {
        id(m): m.running_mean.clone()
        for f in frozen for m in f.modules() if isinstance(m, _BatchNorm)
    }
    outputs = model(torch.randn(2, 3, 64, 64))
    assert [o.requires_grad for o in outputs[:2]] == [frozen_stages < 0] * 2
    if frozen_stages < model.num_stages:
        sum(o.sum() for o in outputs if o.requires_grad).backward()
    else:
        assert not any(o.requires_grad for o in outputs)
    for param in model.parameters():
        if id(param) in frozen_ids:
            assert not param.requires_grad and param.grad is None
        else:
            assert param.grad is not None
    for module in (m for f in frozen for m in f.modules()):
        if isinstance(module, _BatchNorm):
            assert not module.training
            assert torch.equal(module.running_mean, stats_before[id(module)])


def test_norm_eval_keeps_statistics():
    model = EfficientViT(
        'm0', norm_eval=True, embed_out_strides=(4, 8)).train()
    before = {k: v.clone() for k, v in model.state_dict().items()
              if 'running' in k}
    model(torch.randn(2, 3, 64, 64))
    assert all(not m.training for m in model.modules()
               if isinstance(m, _BatchNorm))
    for key, value in before.items():
        assert torch.equal(model.state_dict()[key], value), key


def test_with_cp_same_outputs_and_gradients():
    plain = randomize_(EfficientViT('m0', embed_out_strides=(4, 8))).train()
    checkpointed = EfficientViT(
        'm0', with_cp=True, embed_out_strides=(4, 8)).train()
    checkpointed.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 64, 96)
    results = []
    for model in (plain, checkpointed):
        model.zero_grad()
        out = model(x)
        sum(o.square().mean() for o in out).backward()
        results.append((out, [p.grad.clone() for p in model.parameters()]))
    assert len(results[1][0]) == 5
    for a, b in zip(results[0][0], results[1][0]):
        assert relative_error(b, a) < 1e-5
    for a, b in zip(results[0][1], results[1][1]):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-6)


def test_switch_to_deploy_removes_batchnorm():
    model = randomize_(EfficientViT('m3', embed_out_strides=(8, ))).eval()
    x = torch.randn(2, 3, 77, 90)
    with torch.no_grad():
        expected = model(x)
        model.switch_to_deploy()
        outputs = model(x)
    assert not any(isinstance(m, _BatchNorm) for m in model.modules())
    for out, ref in zip(outputs, expected):
        assert relative_error(out, ref) < 1e-5

    built_fused = EfficientViT(
        'm3', embed_out_strides=(8, ), deploy=True).eval()
    built_fused.load_state_dict(model.state_dict(), strict=True)
    with torch.no_grad():
        for out, ref in zip(built_fused(x), expected):
            assert relative_error(out, ref) < 1e-5


@pytest.mark.parametrize('scope, registry', [
    ('mmdet', 'mmdet.registry'),
    ('mmseg', 'mmseg.registry'),
    ('mmpretrain', 'mmpretrain.registry'),
])
def test_builds_from_each_toolbox_config(scope, registry, tmp_path):
    """A fresh interpreter builds the backbone from a config file of each
    toolbox through ``custom_imports`` and the toolbox's default scope."""
    config = tmp_path / 'cfg.py'
    config.write_text(
        textwrap.dedent(f"""
        custom_imports = dict(imports=['evit_mm'], allow_failed_imports=False)
        default_scope = '{scope}'
        backbone = dict(type='EfficientViT', arch='m1', out_indices=(1, 2))
        """))
    script = textwrap.dedent(f"""
        import torch
        from mmengine.config import Config
        from mmengine.registry import init_default_scope
        from {registry} import MODELS
        cfg = Config.fromfile(r'{config}')
        init_default_scope(cfg.default_scope)
        model = MODELS.build(cfg.backbone).eval()
        outs = model(torch.randn(1, 3, 64, 64))
        print(type(model).__module__, [tuple(o.shape) for o in outs])
        """)
    result = subprocess.run([sys.executable, '-c', script],
                            capture_output=True,
                            text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert 'evit_mm.models.backbones.efficientvit' in result.stdout
    assert '(1, 144, 2, 2), (1, 192, 1, 1)' in result.stdout


def test_import_needs_no_toolbox():
    """``import evit_mm`` works with mmdet, mmseg and mmpretrain hidden."""
    script = textwrap.dedent("""
        import sys
        for name in ('mmdet', 'mmseg', 'mmpretrain', 'timm'):
            sys.modules[name] = None
        import evit_mm
        from mmengine.registry import MODELS
        assert MODELS.get('EfficientViT') is not None
        print('ok')
        """)
    result = subprocess.run([sys.executable, '-c', script],
                            capture_output=True,
                            text=True,
                            timeout=120)
    assert result.returncode == 0 and 'ok' in result.stdout, result.stderr


@pytest.mark.parametrize('kwargs, message', [
    (dict(arch='m9'), "Unknown arch 'm9'"),
    (dict(arch=dict(embed_dims=[64, 128, 192])), 'custom arch needs'),
    (dict(arch=dict(embed_dims=[64, 128, 192], depths=[1, 2, 3],
                    num_heads=[4, 4, 4], kernels=[5, 5, 5])),
     'one kernel per head'),
    (dict(arch=dict(embed_dims=[60, 128, 192], depths=[1, 2, 3],
                    num_heads=[4, 4, 4], kernels=[5, 5, 5, 5])),
     'embed_dim 60'),
    (dict(arch=dict(embed_dims=[64, 128, 192], depths=[1, 2, 3],
                    num_heads=[4, 4, 4], kernels=[5, 4, 5, 5])),
     'must all be odd'),
    (dict(out_indices=(0, 3)), 'out_indices=(0, 3) has 3'),
    (dict(out_indices=()), 'distinct stages'),
    (dict(frozen_stages=4), 'frozen_stages=4 is out of range'),
    (dict(window_size=0), 'window_size=0 is invalid'),
    (dict(window_size=(7, 7)), 'window_size=(7, 7) is invalid'),
    (dict(drop_path_rate=1.5), 'drop_path_rate=1.5'),
    (dict(embed_out_strides=(16, )), 'embed_out_strides=(16,) is invalid'),
    (dict(embed_out_strides=(8, 8)), 'embed_out_strides=(8, 8) is invalid'),
    (dict(embed_out_strides='8'), "embed_out_strides='8' is invalid"),
    (dict(embed_out_strides=(4.0, )), 'allowed: distinct values from (4, 8)'),
    (dict(norm_cfg=dict(type='GN', num_groups=8)),
     "norm_cfg={'type': 'GN', 'num_groups': 8} is not supported; allowed: "
     "a dict whose \"type\" is one of ['BN', 'BN2d', 'SyncBN']"),
    (dict(norm_cfg='BN'), "norm_cfg='BN' is not supported"),
    (dict(act_cfg=dict(type='Mish')),
     "act_cfg={'type': 'Mish'} is not supported; allowed: a dict whose "
     "\"type\" is one of ['ReLU', 'ReLU6', 'LeakyReLU', 'ELU', 'GELU', "
     "'SiLU', 'HSwish']"),
    (dict(act_cfg=dict(type='ReLU'), deploy=True, norm_cfg=dict(type='LN')),
     "norm_cfg={'type': 'LN'} is not supported"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        EfficientViT(**kwargs)


@pytest.mark.parametrize('x, error, message', [
    (torch.randn(3, 64, 64), ValueError, r'4-D .* got \(3, 64, 64\)'),
    (torch.randn(1, 1, 64, 64), ValueError, '1 channels'),
    (torch.zeros(1, 3, 64, 64, dtype=torch.uint8), TypeError,
     'torch.uint8 is not floating point'),
    (torch.randn(0, 3, 64, 64), ValueError, 'empty'),
])
def test_bad_inputs(x, error, message):
    with pytest.raises(error, match=message):
        EfficientViT('m0')(x)
