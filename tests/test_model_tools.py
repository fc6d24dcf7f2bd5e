"""What tools that hook into or trace a model see of EfficientViT: forward
hooks fire on every layer (with the layer's real input and output, on both
the matrix-product and the convolution path of 1x1 convs), torch.fx traces
the backbone into a graph that is right at every input size, and Conv-BN /
BN-Linear fusion uses the BN's own eps."""
import copy

import pytest
import torch
import torch.fx
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.modules.batchnorm import _BatchNorm

from evit_mm.checkpoint import fuse_state_dict
from evit_mm.models import EfficientViT, EfficientViTClassifier
from evit_mm.models.layers import SMALL_POINTWISE_MACS, BNLinear, ConvBN
from reference import randomize_, relative_error

# 2 x 320 x 320: stage 1's 1x1 convs are large enough for the convolution
# path, the later ones small enough for the matrix product.
HOOK_INPUT = (2, 3, 320, 320)


def leaves(model: nn.Module) -> dict:
    return {
        name: module
        for name, module in model.named_modules()
        if not list(module.children())
    }


def record_calls(model: nn.Module, x: torch.Tensor,
                 clone: bool = False) -> dict:
    """Run ``model`` without autograd, with a forward hook on every leaf
    module that keeps the input and output tensors it saw, as feature
    extraction tools do (without ``clone``, no copies: what the model does
    to them later shows); by module name."""
    def keep(tensor: torch.Tensor) -> torch.Tensor:
        return tensor.clone() if clone else tensor

    calls = {}
    handles = [
        module.register_forward_hook(
            lambda mod, args, out, name=name: calls.setdefault(name, []).
            append((keep(args[0]), keep(out))))
        for name, module in leaves(model).items()
    ]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for handle in handles:
            handle.remove()
    return calls


@pytest.mark.parametrize('form', ['train', 'eval', 'deploy'])
@pytest.mark.parametrize('act_inplace', [True, False])
def test_forward_hooks_fire_on_every_layer(form, act_inplace):
    """A hook on any leaf layer of the classifier (convs, BNs, ReLUs, drop
    paths, linear layers) fires, and a conv's hook sees what F.conv2d makes
    of its input: the hook is on the computation itself. The tensors are
    kept as they are where the activations are not in place, and cloned in
    the hook where they are (the default)."""
    torch.manual_seed(0)
    model = EfficientViTClassifier(
        'm0', window_size=7, num_classes=10, distillation=True)
    model.backbone = EfficientViT(
        'm0', window_size=7, out_indices=(2, ),
        drop_path_rate=.1 if form == 'train' else 0.,
        act_cfg=dict(type='ReLU', inplace=act_inplace))
    randomize_(model).train(form == 'train')
    if form == 'deploy':
        model.switch_to_deploy()
    calls = record_calls(model, torch.randn(HOOK_INPUT), clone=act_inplace)
    relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
    assert relus and all(m.inplace == act_inplace for m in relus)

    names = leaves(model)
    assert set(calls) == set(names)
    kinds = {type(m).__name__ for m in names.values()}
    expected_kinds = {'MatmulConv2d', 'ReLU', 'Linear'}
    if form != 'deploy':
        expected_kinds |= {'BatchNorm2d', 'BatchNorm1d'}
    if form == 'train':
        expected_kinds.add('DropPath')
    assert kinds == expected_kinds

    macs = []
    for name, module in names.items():
        if not isinstance(module, nn.Conv2d):
            continue
        for inputs, output in calls[name]:
            expected = F.conv2d(inputs, module.weight, module.bias,
                                module.stride, module.padding,
                                module.dilation, module.groups)
            assert relative_error(output, expected) < 1e-5, name
            if module.kernel_size == (1, 1) and module.groups == 1:
                macs.append(inputs.numel() * module.out_channels)
    # both paths of the 1x1 convs were hooked
    assert min(macs) < SMALL_POINTWISE_MACS < max(macs)


def test_forward_hooks_see_batchnorm_and_linear_computations():
    """The BN and linear hooks see their layer's real input and output
    (cloned in the hook: the activations after the BNs are in place)."""
    model = randomize_(EfficientViTClassifier('m0', num_classes=10)).eval()
    calls = record_calls(model, torch.randn(2, 3, 96, 96), clone=True)
    for name, module in leaves(model).items():
        for inputs, output in calls[name]:
            if isinstance(module, _BatchNorm):
                expected = F.batch_norm(inputs, module.running_mean,
                                        module.running_var, module.weight,
                                        module.bias, False, 0., module.eps)
            elif isinstance(module, nn.Linear):
                expected = inputs @ module.weight.T + module.bias
            else:
                continue
            assert relative_error(output, expected) < 1e-5, name


class ConvLeafTracer(torch.fx.Tracer):
    """Keeps every ``nn.Conv2d`` (subclasses too) as one graph node, as
    quantization and pruning tools want them."""

    def is_leaf_module(self, module: nn.Module, name: str) -> bool:
        return isinstance(module, nn.Conv2d) or super().is_leaf_module(
            module, name)


@pytest.mark.parametrize('deploy', [False, True])
def test_fx_graph_matches_eager_at_every_size(deploy):
    """``torch.fx.symbolic_trace`` of the backbone gives a graph whose
    window padding and partition follow the input: it equals the eager
    model at sizes smaller than a window, not a multiple of it, exactly one
    window, and at another batch."""
    model = randomize_(EfficientViT('m1')).eval()
    if deploy:
        model.switch_to_deploy()
    traced = torch.fx.symbolic_trace(model)
    batchnorms = [
        n for n in traced.graph.nodes if n.op == 'call_module'
        and isinstance(traced.get_submodule(n.target), _BatchNorm)
    ]
    assert bool(batchnorms) != deploy
    for shape in [(1, 3, 160, 224), (2, 3, 97, 161), (1, 3, 32, 48),
                  (1, 3, 112, 112)]:
        x = torch.randn(shape)
        with torch.no_grad():
            expected = model(x)
            outputs = traced(x)
        assert [o.shape for o in outputs] == [e.shape for e in expected]
        for out, ref in zip(outputs, expected):
            assert relative_error(out, ref) < 1e-5, shape


def test_fx_graph_with_convs_as_nodes_trains_like_eager():
    """Traced with convs kept as modules (every conv one ``call_module``
    node), the graph computes the same loss and gradients as the eager
    model in training mode."""
    model = randomize_(EfficientViT('m0')).train()
    graph = ConvLeafTracer().trace(model)
    traced = torch.fx.GraphModule(model, graph)
    convs = {n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)}
    nodes = [n.target for n in graph.nodes if n.op == 'call_module']
    assert convs <= set(nodes)
    assert not any(n.op == 'call_function' and 'conv' in str(n.target)
                   for n in graph.nodes)
    reference = copy.deepcopy(model)
    x = torch.randn(2, 3, 64, 96)
    for net in (reference, traced):
        sum(o.square().mean() for o in net(x)).backward()
    for (name, p), q in zip(reference.named_parameters(),
                            traced.parameters()):
        assert torch.allclose(p.grad, q.grad, rtol=1e-4, atol=1e-7), name


def test_fusion_uses_the_batchnorm_eps():
    """switch_to_deploy folds a BN with its own eps, and fuse_state_dict
    with the eps it is given: both equal the unfused layers in eval mode
    (with an eps large enough to matter)."""
    conv_bn = randomize_(ConvBN(8, 16, 3)).eval()
    bn_linear = randomize_(BNLinear(16, 4)).eval()
    conv_bn.bn.eps = bn_linear.bn.eps = .5
    for layer, x in ((conv_bn, torch.randn(2, 8, 5, 5)),
                     (bn_linear, torch.randn(3, 16))):
        with torch.no_grad():
            expected = layer(x)
            fused_state = fuse_state_dict(
                {f'm.{k}': v for k, v in layer.state_dict().items()}, eps=.5)
            fused = copy.deepcopy(layer)
            fused.switch_to_deploy()
            assert relative_error(fused(x), expected) < 1e-6
            built = type(layer)(*((8, 16, 3) if layer is conv_bn else
                                  (16, 4)), deploy=True)
            built.load_state_dict({k[2:]: v for k, v in fused_state.items()})
            assert relative_error(built(x), expected) < 1e-6
