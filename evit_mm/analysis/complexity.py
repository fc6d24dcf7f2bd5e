"""Model complexity: FLOPs (multiply-accumulates, the paper's convention)
and parameters, counted by tracing with :mod:`mmengine.analysis`.

The EfficientViT paper counts the multiply-accumulates of convolutions and
matrix products of the inference model, where every BatchNorm is folded
into the layer before it. :func:`count_complexity` does the same by default
(BatchNorm is not counted); element-wise operations (activations, softmax,
additions) are not counted either, as in the paper and fvcore.
"""
from typing import Any, Dict, List, Sequence

import torch
import torch.nn as nn
from mmengine.analysis import FlopAnalyzer, parameter_count
from mmengine.analysis.jit_handles import (addmm_flop_jit, batchnorm_flop_jit,
                                           bmm_flop_jit, conv_flop_jit,
                                           einsum_flop_jit,
                                           elementwise_flop_counter,
                                           get_shape, linear_flop_jit,
                                           matmul_flop_jit, norm_flop_counter)

# (MFLOPs, M params) of the ImageNet classifiers at 224x224, EfficientViT
# paper (arXiv 2305.07027), Table 1.
PAPER_COMPLEXITY: Dict[str, tuple] = {
    'm0': (79, 2.3),
    'm1': (167, 3.0),
    'm2': (201, 4.2),
    'm3': (263, 6.9),
    'm4': (299, 8.8),
    'm5': (522, 12.4),
}

# Operators that cost no multiply-accumulates (shape changes, element-wise
# work); listed so that a genuinely unknown operator stands out.
_FREE_OPS = (
    'aten::add', 'aten::add_', 'aten::mul', 'aten::rsub', 'aten::sub',
    'aten::div', 'aten::softmax', 'aten::relu', 'aten::relu_',
    'aten::sigmoid', 'aten::mean', 'aten::pad', 'aten::unflatten',
    'aten::constant_pad_nd', 'aten::remainder', 'aten::floor_divide',
    'aten::index_select')


def baddbmm_flop_jit(inputs: List[Any], outputs: List[Any]) -> int:
    """Multiply-accumulates of ``baddbmm(bias, a, b)``: ``B * N * K * M``."""
    batch, rows, inner = get_shape(inputs[1])
    cols = get_shape(inputs[2])[-1]
    return batch * rows * inner * cols


def flop_analyzer(model: nn.Module,
                  inputs: Sequence[Any],
                  count_bn: bool = False) -> FlopAnalyzer:
    """An mmengine :class:`FlopAnalyzer` that knows EfficientViT's
    operators.

    Args:
        model (nn.Module): The model; it is traced as is (call ``eval()``
            first for inference numbers).
        inputs (Sequence): Positional inputs of ``model.forward``.
        count_bn (bool): Count BatchNorm (mmengine's rule: a scale and a
            shift per element in eval) instead of treating it as folded into
            the previous layer. Defaults to False.
    """
    # mmengine's default handles, with baddbmm added and BatchNorm optional
    # (a None handle does not remove a default one, hence the explicit set).
    handles = {
        'aten::addmm': addmm_flop_jit,
        'aten::bmm': bmm_flop_jit,
        'aten::baddbmm': baddbmm_flop_jit,
        'aten::_convolution': conv_flop_jit,
        'aten::einsum': einsum_flop_jit,
        'aten::matmul': matmul_flop_jit,
        'aten::mm': matmul_flop_jit,
        'aten::linear': linear_flop_jit,
        'aten::group_norm': norm_flop_counter(2),
        'aten::layer_norm': norm_flop_counter(2),
        'aten::instance_norm': norm_flop_counter(1),
        'aten::upsample_nearest2d': elementwise_flop_counter(0, 1),
        'aten::upsample_bilinear2d': elementwise_flop_counter(0, 4),
        'aten::adaptive_avg_pool2d': elementwise_flop_counter(1, 0),
        'aten::grid_sampler': elementwise_flop_counter(0, 4),
    }
    if count_bn:
        handles['aten::batch_norm'] = batchnorm_flop_jit
    analyzer = FlopAnalyzer(model, tuple(inputs)).clear_op_handles()
    analyzer.set_op_handle(**handles)
    analyzer.set_op_handle(**{op: None for op in _FREE_OPS})
    if not count_bn:
        analyzer.set_op_handle('aten::batch_norm', None)
    return analyzer.uncalled_modules_warnings(False)


def count_complexity(model: nn.Module,
                     inputs: Sequence[Any],
                     count_bn: bool = False) -> Dict[str, Any]:
    """FLOPs and parameters of ``model`` on ``inputs``.

    Returns:
        dict: ``flops`` (int, multiply-accumulates), ``params`` (int),
        ``by_operator`` (dict), ``unsupported`` (dict of operators that were
        met but not counted) and ``analyzer`` (for per-module tables).
    """
    analyzer = flop_analyzer(model, inputs, count_bn)
    with torch.no_grad():
        flops = analyzer.total()
    return dict(
        flops=flops,
        params=parameter_count(model)[''],
        by_operator=dict(analyzer.by_operator()),
        unsupported=dict(analyzer.unsupported_ops()),
        analyzer=analyzer)
