"""Tracing EfficientViT models into dynamic-size ONNX graphs (onnx is
needed only when a graph is made)."""
import contextlib
import io
import os
import warnings
from typing import Iterator, Optional, Sequence

import torch
import torch.nn as nn

from ..models.layers import LocalWindowAttention


@contextlib.contextmanager
def fixed_size_tracing(model: nn.Module) -> Iterator[None]:
    """Within this context a trace of ``model`` is for the example's input
    size only (a static graph): its window attention layers may record
    their one-window shortcut instead of the size-independent path.

    Args:
        model (nn.Module): The model to be traced.
    """
    layers = [m for m in model.modules()
              if isinstance(m, LocalWindowAttention)]
    for layer in layers:
        layer.static_trace = True
    try:
        yield
    finally:
        for layer in layers:
            layer.static_trace = False


def export_onnx(model: nn.Module,
                example: torch.Tensor,
                output_names: Sequence[str],
                filename: Optional[str] = None,
                dynamic: bool = True,
                opset: int = 17) -> bytes:
    """Trace ``model`` on ``example`` into an ONNX graph.

    EfficientViT takes its size-independent path while traced (every window
    step is computed from the input shape), so a dynamic graph is correct at
    any batch, height and width; a static graph skips the window steps where
    a map is exactly one window.

    Args:
        model (nn.Module): Model in eval mode (fuse it first for deploy).
        example (Tensor): Example input ``(N, 3, H, W)``.
        output_names (Sequence[str]): One name per output tensor.
        filename (str, optional): Also write the graph here.
        dynamic (bool): Make batch, height and width dynamic. Defaults to
            True.
        opset (int): ONNX opset. Defaults to 17.

    Returns:
        bytes: the serialized ONNX model.
    """
    with torch.no_grad():
        outputs = model(example)
    outputs = outputs if isinstance(outputs, (tuple, list)) else [outputs]
    if len(outputs) != len(output_names):
        raise ValueError(
            f'output_names={list(output_names)!r} names {len(output_names)} '
            f'outputs; the model returns {len(outputs)}.')
    dynamic_axes = None
    if dynamic:
        dynamic_axes = {'input': {0: 'batch', 2: 'height', 3: 'width'}}
        for name, out in zip(output_names, outputs):
            axes = {0: 'batch'}
            if out.dim() == 4:
                axes.update({2: f'{name}_height', 3: f'{name}_width'})
            dynamic_axes[name] = axes
    buffer = io.BytesIO()
    size_context = contextlib.nullcontext() if dynamic else \
        fixed_size_tracing(model)
    with torch.no_grad(), warnings.catch_warnings(), size_context:
        # Shape checks and shortcuts in Python are what tracing warns about;
        # the traced graph takes the general path and is shape-independent.
        warnings.simplefilter('ignore', torch.jit.TracerWarning)
        warnings.simplefilter('ignore', DeprecationWarning)
        torch.onnx.export(
            model, (example, ),
            buffer,
            dynamo=False,
            opset_version=opset,
            input_names=['input'],
            output_names=list(output_names),
            dynamic_axes=dynamic_axes)
    data = buffer.getvalue()
    if filename is not None:
        os.makedirs(os.path.dirname(os.path.abspath(filename)), exist_ok=True)
        with open(filename, 'wb') as file:
            file.write(data)
    return data
