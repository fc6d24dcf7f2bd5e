"""The fast forward paths (channels-last maps, token-major attention,
small 1x1 convs as matrix products, checkpointing) against independent
references: timm's model, float64 training gradients, and plain
``F.conv2d``."""
import copy

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.modules.batchnorm import _BatchNorm

from evit_mm.checkpoint import convert_to_evit
from evit_mm.models import EfficientViT, EfficientViTClassifier
from evit_mm.models.layers import (SMALL_POINTWISE_MACS,
                                   SMALL_POINTWISE_MACS_ONE_THREAD,
                                   CascadedGroupAttention, ConvBN, Residual)
from reference import ARCHS, randomize_, relative_error, timm_model


def classifier_pair(arch: str, img_size: int = 224):
    """timm's random classifier and ours with its weights, in eval mode."""
    reference = timm_model(arch, img_size)
    ours = EfficientViTClassifier(
        arch, window_size=(7, 7, 4) if img_size == 224 else 7)
    ours.load_state_dict(reference.state_dict())
    return reference, ours.eval()


@pytest.mark.parametrize('arch', [
    'm0', 'm1', *[pytest.param(a, marks=pytest.mark.slow) for a in ARCHS[2:]]
])
def test_classifier_logits_match_timm(arch):
    reference, ours = classifier_pair(arch)
    fused = copy.deepcopy(ours)
    fused.switch_to_deploy()
    for shape in [(2, 3, 224, 224), (1, 3, 160, 288)]:
        x = torch.randn(shape)
        with torch.no_grad():
            expected = reference(x)
            assert relative_error(ours(x), expected) < 1e-5
            assert relative_error(fused(x), expected) < 1e-5


def named_grads(model: nn.Module) -> dict:
    return {k: p.grad for k, p in model.named_parameters()}


@pytest.mark.parametrize('arch', ['m0', 'm1'])
def test_training_step_matches_timm_in_float64(arch):
    """Outputs, input and weight gradients, and the updated BN statistics of
    one training step equal timm's (float64, so that agreement is exact to
    rounding; the map sizes need padding in every stage)."""
    reference, ours = classifier_pair(arch)
    reference.double().train()
    ours.double().train()
    x = torch.randn(2, 3, 96, 128, dtype=torch.float64)
    weights = torch.randn(2, 1000, dtype=torch.float64)
    results = []
    for model in (reference, ours):
        inputs = x.clone().requires_grad_()
        out = model(inputs)
        (out * weights).sum().backward()
        results.append((out, inputs.grad))
    assert relative_error(results[1][0], results[0][0]) < 1e-10
    assert relative_error(results[1][1], results[0][1]) < 1e-10

    expected, _ = convert_to_evit(named_grads(reference))
    actual = named_grads(ours)
    assert set(expected) == set(actual)
    scale = max(g.abs().max() for g in expected.values())
    for key, grad in expected.items():
        # gradients of BN biases followed by BN are zero up to rounding, so
        # compare against the overall gradient scale
        assert (actual[key] - grad).abs().max() <= 1e-10 * scale, key
    stats, _ = convert_to_evit({
        k: v for k, v in reference.state_dict().items() if 'running' in k})
    for key, value in stats.items():
        assert relative_error(ours.state_dict()[key], value) < 1e-12, key


def test_with_cp_updates_batchnorm_statistics_once():
    """Recomputing a checkpointed block in backward must not update its
    running statistics a second time; gradients stay the same, also with
    stochastic depth (the recomputation replays the random masks)."""
    torch.manual_seed(1)
    plain = randomize_(EfficientViT('m0', drop_path_rate=.2)).train()
    checkpointed = EfficientViT('m0', drop_path_rate=.2, with_cp=True)
    checkpointed.load_state_dict(plain.state_dict())
    checkpointed.train()
    x = torch.randn(2, 3, 64, 96)
    grads = []
    for model in (plain, checkpointed):
        torch.manual_seed(2)
        sum(o.square().mean() for o in model(x)).backward()
        grads.append([p.grad for p in model.parameters()])
    for a, b in zip(*grads):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-7)
    for (key, a), b in zip(plain.state_dict().items(),
                           checkpointed.state_dict().values()):
        assert torch.equal(a, b), key
    bn = next(m for m in checkpointed.modules() if isinstance(m, _BatchNorm))
    assert bn.num_batches_tracked.item() == 1


@pytest.mark.parametrize('channels_last', [False, True])
@pytest.mark.parametrize('size', [4, 40])
@pytest.mark.parametrize('deploy', [False, True])
def test_pointwise_conv_bn_matches_conv2d(size, channels_last, deploy):
    """Small 1x1 Conv-BN layers run as a matrix product, large ones as a
    convolution; both equal F.conv2d + F.batch_norm, with the same
    gradients."""
    layer = ConvBN(48, 96, deploy=deploy)
    randomize_(layer)
    x = torch.randn(2, 48, size, size)
    macs = x.numel() * 96
    assert macs < SMALL_POINTWISE_MACS_ONE_THREAD if size == 4 else \
        macs > SMALL_POINTWISE_MACS
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    for training in ([False] if deploy else [False, True]):
        layer.train(training)
        layer.zero_grad(set_to_none=True)
        reference = copy.deepcopy(layer)
        inputs = [x.clone().requires_grad_() for _ in range(2)]
        out = layer(inputs[0])
        expected = F.conv2d(inputs[1], reference.conv.weight,
                            reference.conv.bias)
        if not deploy:
            bn = reference.bn
            expected = F.batch_norm(expected, bn.running_mean,
                                    bn.running_var, bn.weight, bn.bias,
                                    training, bn.momentum, bn.eps)
        assert relative_error(out, expected) < 1e-6
        grad = torch.randn_like(out)
        out.backward(grad)
        expected.backward(grad)
        assert relative_error(inputs[0].grad, inputs[1].grad) < 1e-5
        assert relative_error(layer.conv.weight.grad,
                              reference.conv.weight.grad) < 1e-5


def test_residual_leaves_input_and_branch_output_unchanged():
    branch = ConvBN(8, 8, 3, groups=8)
    randomize_(branch).eval()
    residual = Residual(branch)
    outputs = []
    branch.register_forward_hook(lambda mod, args, out: outputs.append(out))
    x = torch.randn(2, 8, 5, 5)
    kept = x.clone()
    with torch.no_grad():
        out = residual(x)
        expected_branch = F.batch_norm(
            F.conv2d(x, branch.conv.weight, padding=1, groups=8),
            branch.bn.running_mean, branch.bn.running_var, branch.bn.weight,
            branch.bn.bias, False, 0., branch.bn.eps)
    assert relative_error(outputs[0], expected_branch) < 1e-6
    assert relative_error(out, x + expected_branch) < 1e-6
    assert torch.equal(x, kept)
    x.requires_grad_()
    residual(x).sum().backward()
    assert x.grad is not None
    with torch.no_grad():
        assert torch.equal(Residual(nn.Identity())(kept), 2 * kept)
        assert torch.equal(x, kept)


def test_attention_follows_bias_table_changes():
    """Eval results must reflect the current bias table, however it was
    changed (here through .data, which autograd does not see)."""
    attn = randomize_(CascadedGroupAttention(32, 16, 2, 1., 4, [3, 3])).eval()
    x = torch.randn(3, 32, 4, 4)
    with torch.no_grad():
        before = attn(x)
        attn.attention_biases.data.mul_(-2)
        after = attn(x)
        fresh = copy.deepcopy(attn)(x)
    assert not torch.allclose(before, after)
    assert torch.equal(after, fresh)


def test_memory_format_does_not_change_results():
    """Maps may arrive channels-last (inside the backbone) or contiguous
    (a layer used alone); the backbone returns contiguous NCHW maps."""
    attn = randomize_(CascadedGroupAttention(48, 16, 3, 1., 7,
                                             [5, 5, 5])).eval()
    x = torch.randn(2, 48, 7, 7)
    with torch.no_grad():
        assert torch.allclose(
            attn(x), attn(x.contiguous(memory_format=torch.channels_last)),
            rtol=1e-6, atol=1e-6)
        outputs = randomize_(EfficientViT('m0')).eval()(
            torch.randn(1, 3, 100, 150))
    assert all(out.is_contiguous() for out in outputs)
