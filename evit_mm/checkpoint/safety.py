"""What ``torch.load(weights_only=True)`` may unpickle from a checkpoint
besides tensors and plain data: the few types the OpenMMLab toolboxes
store, never code.

:func:`safe_globals` is the allow-list, in the form of
:func:`torch.serialization.add_safe_globals`: numpy arrays, numeric dtypes
and scalars (metrics, seeds) and mmengine's ``HistoryBuffer`` (training
logs in the message hub), with a restricted stand-in for the one
``getattr`` a pickled ``HistoryBuffer`` needs.
"""
import pickle

import numpy as np


def _numpy_safe_globals() -> list:
    """numpy types that checkpoints store: arrays, scalars, numeric dtypes
    (no object dtype)."""
    try:
        from numpy._core.multiarray import _reconstruct, scalar
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct, scalar
    dtypes = [
        type(np.dtype(name))
        for name in ('bool', 'int8', 'int16', 'int32', 'int64', 'uint8',
                     'uint16', 'uint32', 'uint64', 'float16', 'float32',
                     'float64')
    ]
    return [np.ndarray, np.dtype, _reconstruct, scalar, *dtypes]


def _history_buffer_getattr(owner, name: str):
    """Stands in for ``getattr`` while unpickling, where the only use
    allowed is the one mmengine's ``HistoryBuffer`` makes: its state stores
    its statistics methods, pickled as ``getattr(HistoryBuffer, 'mean')``.
    Every other lookup is refused (a free ``getattr`` would let a pickle
    reach and call arbitrary functions)."""
    from mmengine.logging.history_buffer import HistoryBuffer
    methods = {'min', 'max', 'mean', 'current'} | set(
        HistoryBuffer._statistics_methods)
    if (owner is HistoryBuffer or isinstance(owner, HistoryBuffer)) and \
            name in methods:
        return getattr(owner, name)
    raise pickle.UnpicklingError(
        f'Refused getattr({type(owner).__name__}, {name!r}) while loading a '
        'checkpoint: only the statistics methods of mmengine\'s '
        'HistoryBuffer may be looked up.')


def safe_globals() -> list:
    """The allow-list of non-tensor types accepted when unpickling, in the
    form of :func:`torch.serialization.add_safe_globals`."""
    from mmengine.logging.history_buffer import HistoryBuffer
    return _numpy_safe_globals() + [
        HistoryBuffer, (_history_buffer_getattr, 'builtins.getattr')
    ]
