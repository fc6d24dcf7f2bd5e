"""Pretrained loading: official, timm (.pth, .safetensors) and evit_mm
layouts, bias-table resizing, the converter tool, safe loading and errors."""
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import timm
import torch
from safetensors.torch import save_file

from evit_mm.checkpoint import CheckpointError, load_backbone_checkpoint
from evit_mm.models import EfficientViT
from reference import (ARCHS, official_state_dict, relative_error,
                       timm_features, timm_model)
from timm.layers import resize_rel_pos_bias_table_levit

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONVERTER = os.path.join(REPO_ROOT, 'tools', 'model_converters',
                         'efficientvit_to_mm.py')


def pretrained(arch: str, path, prefix=None, **kwargs) -> EfficientViT:
    model = EfficientViT(
        arch,
        init_cfg=dict(type='Pretrained', checkpoint=str(path), prefix=prefix),
        **kwargs)
    model.init_weights()
    return model.eval()


def assert_same_features(model, reference, size=(96, 128)):
    x = torch.randn(2, 3, *size)
    with torch.no_grad():
        outputs = model(x)
    for out, ref in zip(outputs, timm_features(reference, x)):
        assert relative_error(out, ref) < 1e-5


@pytest.mark.parametrize('arch', ARCHS)
def test_official_layout_into_dense_backbone(arch, tmp_path):
    """An official ImageNet checkpoint (stage-3 bias tables 4x4) loads into
    the 7x7-window dense backbone; the result equals timm's own model at 7x7
    windows loaded through timm's resizing filter."""
    imagenet = timm_model(arch, 224)
    path = tmp_path / 'official.pth'
    torch.save({'model': official_state_dict(imagenet)}, path)
    model = pretrained(arch, path)

    dense_reference = timm.create_model(f'efficientvit_{arch}', img_size=448)
    state = imagenet.state_dict()
    for key, table in state.items():
        if key.endswith('attention_biases') and table.shape[1] != 49:
            state[key] = resize_rel_pos_bias_table_levit(
                table.T, (49, table.shape[0]), antialias=False).T
    dense_reference.load_state_dict(state)
    assert_same_features(model, dense_reference.eval())


@pytest.mark.parametrize('arch', ['m0', 'm5'])
def test_official_layout_into_classifier_windows(arch, tmp_path):
    imagenet = timm_model(arch, 224)
    path = tmp_path / 'official.pth'
    torch.save({'model': official_state_dict(imagenet)}, path)
    assert_same_features(
        pretrained(arch, path, window_size=(7, 7, 4)), imagenet, (224, 224))


def keys_cubic(x: float, a: float = -0.75) -> float:
    """Keys' cubic convolution kernel (1981) with PyTorch's a = -0.75."""
    x = abs(x)
    if x <= 1:
        return (a + 2) * x**3 - (a + 3) * x**2 + 1
    if x < 2:
        return a * x**3 - 5 * a * x**2 + 8 * a * x - 4 * a
    return 0.


def bicubic_matrix(size_in: int, size_out: int) -> np.ndarray:
    """The 1-D resampling matrix of the official downstream loader's rule,
    ``F.interpolate(mode='bicubic', align_corners=False)``, written out:
    output sample i sits at (i + 0.5) * size_in / size_out - 0.5 in input
    coordinates and mixes its four nearest input samples with Keys'
    kernel, taking samples beyond the border from the edge."""
    matrix = np.zeros((size_out, size_in))
    for i in range(size_out):
        source = (i + 0.5) * size_in / size_out - 0.5
        for j in range(math.floor(source) - 1, math.floor(source) + 3):
            matrix[i, min(max(j, 0), size_in - 1)] += keys_cubic(source - j)
    return matrix


def test_resized_tables_follow_bicubic_rule(tmp_path):
    imagenet = timm_model('m0', 224)
    path = tmp_path / 'official.pth'
    torch.save({'model': official_state_dict(imagenet)}, path)
    model = EfficientViT('m0')
    report = load_backbone_checkpoint(model, str(path))
    assert len(report['resized']) == 3  # the three stage-3 blocks
    resample = bicubic_matrix(4, 7)
    for i in range(3):
        table = imagenet.stages[2].blocks[i].mixer.m.attn.attention_biases
        maps = table.detach().double().numpy().reshape(4, 4, 4)
        expected = np.stack([resample @ m @ resample.T for m in maps])
        actual = model.stages[2].blocks[i].mixer.branch.attn.attention_biases
        np.testing.assert_allclose(
            actual.detach().numpy().reshape(4, 7, 7), expected, atol=1e-5)


def test_timm_safetensors(tmp_path):
    reference = timm_model('m2', 448)
    path = tmp_path / 'model.safetensors'
    save_file(reference.state_dict(), str(path))
    assert_same_features(pretrained('m2', path), reference)


def test_converter_and_mm_prefix(tmp_path):
    reference = timm_model('m1', 448)
    source = tmp_path / 'timm.pth'
    torch.save({'state_dict': reference.state_dict()}, source)
    converted = tmp_path / 'evit_mm.pth'
    result = subprocess.run(
        [sys.executable, CONVERTER, str(source), str(converted)],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    state = torch.load(converted, weights_only=True)['state_dict']
    assert all(k.startswith(('backbone.', 'head.')) for k in state)
    assert {'head.classifier.linear.weight', 'head.classifier.bn.weight'} \
        <= set(state)
    assert_same_features(pretrained('m1', converted), reference)
    assert_same_features(
        pretrained('m1', converted, prefix='backbone.'), reference)
    with pytest.raises(CheckpointError, match="prefix 'neck.'"):
        pretrained('m1', converted, prefix='neck.')


def test_deploy_backbone_loads_unfused_and_converted_fused(tmp_path):
    reference = timm_model('m0', 448)
    source = tmp_path / 'timm.pth'
    torch.save(reference.state_dict(), source)
    assert_same_features(pretrained('m0', source, deploy=True), reference)

    fused = tmp_path / 'fused.pth'
    subprocess.run([sys.executable, CONVERTER, str(source), str(fused),
                    '--deploy'], check=True, capture_output=True, timeout=300)
    model = pretrained('m0', fused, deploy=True)
    assert not any('.bn.' in k for k in model.state_dict())
    assert_same_features(model, reference)


def test_wrong_arch_names_the_arch(tmp_path):
    path = tmp_path / 'm1.pth'
    torch.save(timm_model('m1', 224).state_dict(), path)
    with pytest.raises(CheckpointError) as info:
        pretrained('m0', path)
    assert "looks like arch 'm1'" in str(info.value)
    assert str(path) in str(info.value)


def test_missing_weight_is_an_error(tmp_path):
    state = timm_model('m0', 448).state_dict()
    state.pop('stages.1.blocks.0.ffn0.m.pw1.conv.weight')
    path = tmp_path / 'partial.pth'
    torch.save(state, path)
    with pytest.raises(CheckpointError,
                       match=r'missing \(1\).*stages\.1\.blocks\.0\.ffn0'):
        pretrained('m0', path)


def test_other_model_is_an_error(tmp_path):
    path = tmp_path / 'resnet.pth'
    torch.save({'conv1.weight': torch.zeros(64, 3, 7, 7),
                'fc.weight': torch.zeros(10, 64)}, path)
    with pytest.raises(CheckpointError,
                       match='resnet.pth .* holds weights of another model'):
        pretrained('m0', path)


class _RunsCode:
    marker = ''

    def __reduce__(self):
        return (open, (self.marker, 'w'))


def test_pickle_with_code_is_refused_and_not_run(tmp_path):
    marker = tmp_path / 'code_ran'
    _RunsCode.marker = str(marker)
    path = tmp_path / 'evil.pth'
    torch.save({'model': {'x': torch.zeros(1)}, 'payload': _RunsCode()},
               path)
    with pytest.raises(CheckpointError, match='Refused to load'):
        pretrained('m0', path)
    assert not marker.exists()


def test_missing_and_truncated_files(tmp_path):
    with pytest.raises(CheckpointError, match='not found.*nope.pth'):
        pretrained('m0', tmp_path / 'nope.pth')
    path = tmp_path / 'cut.pth'
    torch.save(timm_model('m0', 224).state_dict(), path)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    with pytest.raises(CheckpointError, match=f'Cannot read.*{path.name}'):
        pretrained('m0', path)
