"""evit_mm's rewriters in mmdeploy's own tools.

mmdeploy's ``tools/deploy.py`` (and its ``torch2onnx`` wherever it is
called) loads the model config with mmengine, whose ``custom_imports``
imports evit_mm. When mmdeploy is imported by then, ``import evit_mm``
calls :func:`register_rewriters`, so that mmdeploy's export of an evit_mm
model uses them. mmdeploy applies registered rewriters only inside its
``RewriterContext``, during its own exports.
"""
import importlib.util


def register_rewriters() -> None:
    """Register evit_mm's rewriters in mmdeploy's ``FUNCTION_REWRITER``:
    the TorchScript exporter for ``torch.onnx.export``
    (:mod:`evit_mm.deploy.exporter`) and, where mmdet is installed, the
    whole-model rewriters of :mod:`evit_mm.deploy.rewriters` (mmdeploy's
    detection codebase needs mmdet). Registering twice is harmless: a module
    is imported once."""
    from . import exporter  # noqa: F401
    if importlib.util.find_spec('mmdet') is not None:
        from . import rewriters  # noqa: F401
