"""mmdeploy's exports go through torch's TorchScript exporter.

torch >= 2.9 exports with the dynamo exporter unless ``torch.onnx.export``
gets ``dynamo=False``; it has no setting or environment variable for the
default. mmdeploy 1.3.1 calls it without the argument (so on torch 2.14 its
``torch2onnx`` stops with ``No module named 'onnxscript'``), and its
function and symbolic rewriters (NMS, RoIAlign, the heads' post-processing)
only act in the TorchScript exporter, which they were written for.

Importing this module registers a rewriter of ``torch.onnx.export`` in
mmdeploy's ``FUNCTION_REWRITER``: mmdeploy applies it only inside its
``RewriterContext``, i.e. to the export that ``torch2onnx`` makes, for
every backend; ``torch.onnx.export`` outside mmdeploy's export is left as
torch has it.
"""
from unittest import mock

from mmdeploy.core import FUNCTION_REWRITER


def _cast_long(g, value, non_blocking: bool):
    """ONNX ``Cast`` to int64: the ``_cast_Long`` helper that torch 2.14's
    ``symbolic_opset9`` no longer has and mmdeploy's RoIAlign symbolic
    imports."""
    return g.op('Cast', value, to_i=7)  # onnx.TensorProto.INT64


@FUNCTION_REWRITER.register_rewriter(func_name='torch.onnx.export')
def torch_onnx_export__torchscript(*args, **kwargs):
    """``torch.onnx.export`` with ``dynamo=False`` unless the caller chose,
    and with ``torch.onnx.symbolic_opset9._cast_Long`` present for the
    duration of the export (Mask R-CNN's RoIAlign symbolic imports it)."""
    from torch.onnx import symbolic_opset9
    ctx = FUNCTION_REWRITER.get_context()
    kwargs.setdefault('dynamo', False)
    cast_long = getattr(symbolic_opset9, '_cast_Long', _cast_long)
    with mock.patch.object(symbolic_opset9, '_cast_Long', cast_long,
                           create=True):
        return ctx.origin_func(*args, **kwargs)
