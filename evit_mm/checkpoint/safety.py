"""What ``torch.load`` may unpickle from a checkpoint: tensors, plain data
and the few types the OpenMMLab toolboxes store, never code.

* :func:`safe_globals` is the allow-list: numpy arrays, dtypes and scalars
  (metrics, seeds) and mmengine's ``HistoryBuffer`` (training logs in the
  message hub), with a restricted stand-in for the one ``getattr`` a
  pickled ``HistoryBuffer`` needs.
* :func:`weights_only` makes every ``torch.load`` inside it read with
  ``weights_only=True``, also where the caller asks otherwise (torch's own
  ``TORCH_FORCE_WEIGHTS_ONLY_LOAD`` switch); mmengine's URL loaders call
  ``torch.hub.load_state_dict_from_url``, whose default is
  ``weights_only=False``.
"""
import contextlib
import os
import pickle
import threading
from typing import Iterator

import numpy as np

_FORCE = 'TORCH_FORCE_WEIGHTS_ONLY_LOAD'
_FORCE_NO = 'TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD'
_lock = threading.Lock()
_depth = 0
_saved_environ: dict = {}


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


@contextlib.contextmanager
def weights_only() -> Iterator[None]:
    """Within it, every ``torch.load`` reads with ``weights_only=True``,
    whatever its caller passes or ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD``
    says. Nests, and is safe across threads (the switch is on while any
    thread is inside)."""
    global _depth
    with _lock:
        if _depth == 0:
            _saved_environ.update(
                {key: os.environ.pop(key, None)
                 for key in (_FORCE, _FORCE_NO)})
            os.environ[_FORCE] = '1'
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                for key, value in _saved_environ.items():
                    os.environ.pop(key, None)
                    if value is not None:
                        os.environ[key] = value
                _saved_environ.clear()
