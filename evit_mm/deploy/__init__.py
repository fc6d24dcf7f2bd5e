"""Inference and deployment: building a config's model for inference,
ONNX export and ONNX Runtime sessions; whole models with mmdeploy in
:mod:`.mmdeploy_export` and :mod:`.backends` (not imported here: they need
mmdeploy).

Nothing here is imported by ``import evit_mm``; onnx and onnxruntime are
imported only by the functions that need them.
"""
from .builder import TensorMode, build_from_config
from .onnx_export import export_onnx
from .runtimes import ort_session, run_session

__all__ = [
    'TensorMode', 'build_from_config', 'export_onnx', 'ort_session',
    'run_session'
]
