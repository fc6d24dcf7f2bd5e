"""Running ONNX graphs in ONNX Runtime on the CPU (onnxruntime is imported
only when a session is made)."""
from typing import Tuple, Union

import torch


def ort_session(onnx_model: Union[bytes, str], threads: int = 0,
                spinning: bool = True):
    """An onnxruntime CPU session with all graph optimizations.

    Args:
        onnx_model (bytes | str): Serialized model or path.
        threads (int): Intra-op threads; 0 lets onnxruntime choose.
        spinning (bool): Whether idle intra-op threads spin waiting for
            work (onnxruntime's default: lowest latency for back-to-back
            runs, but the spinning threads slow down other work, such as
            PyTorch, in the same process for a while after each run).
    """
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    if not spinning:
        options.add_session_config_entry('session.intra_op.allow_spinning',
                                         '0')
    options.inter_op_num_threads = 1
    options.graph_optimization_level = \
        ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(
        onnx_model, options, providers=['CPUExecutionProvider'])


def run_session(session, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
    """Run an onnxruntime session on a tensor; outputs as tensors."""
    name = session.get_inputs()[0].name
    outputs = session.run(None, {name: x.detach().cpu().numpy()})
    return tuple(torch.from_numpy(out) for out in outputs)
