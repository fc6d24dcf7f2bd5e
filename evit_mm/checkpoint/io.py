"""Reading checkpoints from anywhere mmengine can, safely.

Reads go through mmengine's ``CheckpointLoader`` (local paths, http(s)
with one download per machine in a distributed run, ``open-mmlab://``,
``torchvision://``, ``s3://``, ...), which :func:`install_safe_loading`
extends to every ``prefix://`` of a storage registered with
``mmengine.fileio.register_backend``. Every read unpickles with
``weights_only=True`` and the allow-list of :mod:`.safety`, so a file that
carries code cannot run it.
"""
import functools
import io
import os
import pickle
import re
import zipfile
from collections import OrderedDict
from typing import Callable, Dict, Optional, Union
from urllib.parse import urlparse

import torch
from mmengine.dist import get_dist_info
from mmengine.fileio import get_file_backend
from mmengine.fileio.backends import BaseStorageBackend
from mmengine.runner import CheckpointLoader

from .safety import safe_globals, weights_only

StateDict = Dict[str, torch.Tensor]
MapLocation = Union[None, str, torch.device, Callable, dict]


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be read or does not fit the model."""


def _first_line(err: Exception) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else repr(err)


def _content_error(filename: str,
                   err: Exception) -> Optional[CheckpointError]:
    """A :class:`CheckpointError` naming ``filename`` for what ``torch.load``
    raises on a file's content: a pickle refused by ``weights_only`` loading,
    or a truncated or foreign file; None for other errors."""
    message = str(err)
    if isinstance(err, pickle.UnpicklingError) and (
            'Weights only load failed' in message or 'Refused' in message):
        found = re.search(r'GLOBAL ([\w.]+)', message)
        reason = next((line.strip() for line in message.splitlines()
                       if 'Refused' in line), None) or (
                           f'it asks for {found.group(1)}, which is not on '
                           'the allow-list' if found else _first_line(err))
        return CheckpointError(
            f'Refused to load {filename}: it holds objects other than '
            f'tensors and plain data (a pickle that may run code): '
            f'{reason.rstrip(".")}. '
            'Only weights are loaded; nothing in the file was executed.')
    if 'PytorchStreamReader' in message or isinstance(
            err, (EOFError, pickle.UnpicklingError, zipfile.BadZipFile)):
        return CheckpointError(
            f'Cannot read checkpoint {filename} (truncated or not a PyTorch '
            f'checkpoint): {_first_line(err)}')
    return None


def _storage_backend(filename: str) -> BaseStorageBackend:
    """The ``mmengine.fileio`` backend of ``filename``'s prefix.

    Raises:
        CheckpointError: when no backend is registered for the prefix.
    """
    try:
        return get_file_backend(filename)
    except KeyError:
        prefix = filename.split('://')[0]
        raise CheckpointError(
            f'Cannot read checkpoint {filename}: neither mmengine\'s '
            f'CheckpointLoader nor mmengine.fileio handles the prefix '
            f'{prefix!r}. Register a storage for it with '
            f"mmengine.fileio.register_backend(..., prefixes='{prefix}')."
        ) from None


def _local_or_storage_loader(load_from_local: Callable) -> Callable:
    """mmengine's local loader, extended to the ``prefix://`` paths that
    only a storage backend registered with ``mmengine.fileio`` knows
    (mmengine hands every path no other loader claims to the local one)."""

    def load_from_local_or_storage(filename: str,
                                   map_location: MapLocation = None):
        if '://' not in filename:
            return load_from_local(filename, map_location)
        return torch.load(
            io.BytesIO(_storage_backend(filename).get(filename)),
            map_location=map_location, weights_only=True)

    return load_from_local_or_storage


def _weights_only_loader(loader: Callable) -> Callable:
    """``loader`` (an mmengine checkpoint loader) reading with
    ``weights_only=True``; a refused pickle or a truncated file is a
    :class:`CheckpointError` (a ``RuntimeError``) naming the file, other
    errors are the loader's."""

    @functools.wraps(loader)
    def load(filename: str, map_location: MapLocation = None):
        with weights_only():
            try:
                return loader(filename, map_location)
            except Exception as err:
                error = _content_error(filename, err)
                if error is None:
                    raise
                raise error from err

    load.reads_weights_only = True
    return load


def install_safe_loading() -> None:
    """Make every checkpoint read through mmengine in this process safe,
    able to read the toolboxes' checkpoints, and able to read from any
    storage registered with ``mmengine.fileio``.

    Adds :func:`~.safety.safe_globals` to torch's allow-list, and makes each
    loader of mmengine's ``CheckpointLoader`` read with
    ``weights_only=True`` (mmengine's URL loaders would unpickle anything).
    The loaders stay mmengine's (paths, caches, ``map_location`` and
    distributed downloads behave as in mmengine), except that a
    ``prefix://`` path no loader claims is read from the storage backend
    registered for that prefix instead of failing as a missing local file.
    ``import evit_mm`` calls it; calling it again changes nothing.
    """
    torch.serialization.add_safe_globals(safe_globals())
    for prefix, loader in list(CheckpointLoader._schemes.items()):
        if getattr(loader, 'reads_weights_only', False):
            continue
        if prefix == '':
            loader = _local_or_storage_loader(loader)
        CheckpointLoader.register_scheme(
            prefix, _weights_only_loader(loader), force=True)


def _download_once(url: str) -> str:
    """A local copy of ``url`` in torch's hub cache. In a distributed run
    rank 0 downloads first and the others find its copy (as mmengine's
    ``load_from_http`` does for ``.pth`` files)."""
    path = os.path.join(torch.hub.get_dir(), 'checkpoints',
                        os.path.basename(urlparse(url).path))

    def fetch():
        if not os.path.isfile(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            torch.hub.download_url_to_file(url, path)

    rank, world_size = get_dist_info()
    if rank == 0:
        fetch()
    if world_size > 1:
        torch.distributed.barrier()
        if rank > 0:
            fetch()
    return path


def _read_safetensors(filename: str, map_location: MapLocation) -> dict:
    from safetensors.torch import load
    if filename.startswith(('http://', 'https://')):
        filename = _download_once(filename)
    state_dict = load(_storage_backend(filename).get(filename))
    if isinstance(map_location, (str, torch.device)):
        state_dict = {k: v.to(map_location) for k, v in state_dict.items()}
    return state_dict


def read_checkpoint(filename: str, map_location: MapLocation = 'cpu') -> dict:
    """Read a checkpoint (``.pth`` or ``.safetensors``) from a local path,
    a URL or any prefix mmengine knows, into a dict, safely.

    Args:
        filename (str): Local path, ``http(s)://``, ``open-mmlab://``,
            ``torchvision://``, ``s3://`` ... or a ``prefix://`` registered
            with ``mmengine.fileio.register_backend``.
        map_location: As in :func:`torch.load`; a device (name) for
            ``.safetensors`` files. Defaults to ``'cpu'``.

    Raises:
        CheckpointError: naming the file, when it is missing, unreadable,
            truncated, or holds objects outside the allow-list (such as code
            to run at unpickling time, which is never executed).
    """
    filename = str(filename)
    try:
        with weights_only():
            if filename.endswith('.safetensors'):
                checkpoint = _read_safetensors(filename, map_location)
            else:
                checkpoint = CheckpointLoader.load_checkpoint(
                    filename, map_location)
    except CheckpointError:
        raise
    except FileNotFoundError as err:
        raise CheckpointError(
            f'Checkpoint file not found: {filename}') from err
    except Exception as err:  # anything else means "unreadable"
        raise _content_error(filename, err) or CheckpointError(
            f'Cannot read checkpoint {filename}: {_first_line(err)}') from err
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
