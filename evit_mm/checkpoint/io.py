"""Safe reading of checkpoint files: tensors and an explicit allow-list of
the plain types mmengine stores, never code."""
import os
import pickle
import re
from collections import OrderedDict
from typing import Dict

import numpy as np
import torch

StateDict = Dict[str, torch.Tensor]


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be read or does not fit the model."""


def _numpy_safe_globals() -> list:
    """numpy types that mmengine's message hub stores in checkpoints."""
    try:
        from numpy._core.multiarray import _reconstruct, scalar
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct, scalar
    dtypes = [
        type(np.dtype(name)) for name in ('float64', 'float32', 'float16',
                                          'int64', 'int32', 'bool', 'uint8')
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
    """The allow-list of non-tensor types accepted when unpickling: numpy
    arrays/scalars and mmengine's ``HistoryBuffer`` (training logs), with
    the restricted ``getattr`` its pickled state needs."""
    from mmengine.logging.history_buffer import HistoryBuffer
    return _numpy_safe_globals() + [
        HistoryBuffer, (_history_buffer_getattr, 'builtins.getattr')
    ]


def safe_torch_load(filename: str, map_location='cpu'):
    """``torch.load`` restricted to tensors and :func:`safe_globals`.

    Raises:
        CheckpointError: naming the file, when it is missing, unreadable,
            truncated, or holds objects outside the allow-list (such as code
            to run at unpickling time, which is never executed).
    """
    if not os.path.isfile(filename):
        raise CheckpointError(f'Checkpoint file not found: {filename}')
    try:
        with torch.serialization.safe_globals(safe_globals()):
            return torch.load(
                filename, map_location=map_location, weights_only=True)
    except Exception as err:  # every failure here means "unreadable"
        message = str(err)
        if 'Weights only load failed' in message or 'Unsupported global' \
                in message or 'unpickl' in message.lower():
            raise CheckpointError(
                f'Refused to load {filename}: it holds objects other than '
                'tensors and plain data (a pickle that may run code). Only '
                'weights are loaded; nothing in the file was executed. '
                f'Details: {message.splitlines()[0]}') from err
        raise CheckpointError(
            f'Cannot read checkpoint {filename} (truncated or not a PyTorch '
            f'checkpoint): {message.splitlines()[0] if message else err!r}'
        ) from err


def read_checkpoint(filename: str) -> dict:
    """Read a local path or http(s) URL (``.pth`` or ``.safetensors``) into a
    dict, safely. URLs are cached by :func:`torch.hub.download_url_to_file`
    in torch's hub directory."""
    if filename.startswith(('http://', 'https://')):
        cache_dir = os.path.join(torch.hub.get_dir(), 'checkpoints')
        os.makedirs(cache_dir, exist_ok=True)
        local = os.path.join(cache_dir, os.path.basename(filename))
        if not os.path.isfile(local):
            torch.hub.download_url_to_file(filename, local)
        filename = local
    if filename.endswith('.safetensors'):
        if not os.path.isfile(filename):
            raise CheckpointError(f'Checkpoint file not found: {filename}')
        from safetensors import SafetensorError
        from safetensors.torch import load_file
        try:
            return load_file(filename)
        except (SafetensorError, OSError, ValueError) as err:
            raise CheckpointError(
                f'Cannot read safetensors file {filename}: {err}') from err
    checkpoint = safe_torch_load(filename)
    if not isinstance(checkpoint, dict):
        raise CheckpointError(
            f'{filename} holds a {type(checkpoint).__name__}, not a dict of '
            'weights.')
    return checkpoint


def extract_state_dict(checkpoint: dict) -> StateDict:
    """The weights of a checkpoint dict (``state_dict``, ``model`` or the dict
    itself), with any DataParallel ``module.`` prefix removed."""
    for key in ('state_dict', 'model'):
        if isinstance(checkpoint.get(key), dict):
            checkpoint = checkpoint[key]
            break
    return OrderedDict(
        (re.sub(r'^module\.', '', k), v) for k, v in checkpoint.items()
        if isinstance(v, torch.Tensor))

