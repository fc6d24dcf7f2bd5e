"""Reading checkpoints safely, from anywhere mmengine reads them.

:func:`read_checkpoint` reads local paths, http(s) URLs (downloaded once
per machine in a distributed run, into torch's hub cache as mmengine's
loader does), mmengine's model-zoo names (``open-mmlab://``,
``torchvision://``, ``mmcls://``, through mmengine's public name tables)
and every ``prefix://`` of a storage registered with
``mmengine.fileio.register_backend`` (``s3://`` included). Every read
unpickles with ``torch.load(weights_only=True)`` and the allow-list of
:mod:`.safety`, so a file that carries code cannot run it.
:func:`register_safe_download_loaders` hands the prefixes whose mmengine
loaders download (and unpickle with ``weights_only=False``) to it.
"""
import contextlib
import io
import os
import os.path as osp
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
from mmengine.runner import (CheckpointLoader, get_deprecated_model_names,
                             get_external_models, get_mmcls_models,
                             get_torchvision_models)

from .safety import safe_globals

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


def register_safe_globals() -> None:
    """Add :func:`~.safety.safe_globals` to torch's process-wide allow-list
    for ``weights_only`` loading (:func:`torch.serialization.add_safe_globals`),
    so that every ``torch.load(weights_only=True)`` (torch's default since
    2.6, and what mmengine's local loader uses) reads the checkpoints
    mmengine's ``Runner`` writes. ``import evit_mm`` calls it; calling it
    again changes nothing.
    """
    torch.serialization.add_safe_globals(safe_globals())


def _mmengine_home() -> str:
    """mmengine's home folder, where ``open-mmlab://`` names that are not
    URLs are looked up (``$MMENGINE_HOME``, else ``~/.cache/mmengine``)."""
    cache = os.getenv('XDG_CACHE_HOME', osp.join('~', '.cache'))
    return osp.expanduser(
        os.getenv('MMENGINE_HOME', osp.join(cache, 'mmengine')))


def _model_zoo_location(filename: str) -> str:
    """The URL or local path that a model-zoo name (``open-mmlab://``,
    ``openmmlab://``, ``torchvision://``, ``modelzoo://``, ``mmcls://``)
    stands for in mmengine's name tables; any other filename as it is.

    Raises:
        CheckpointError: for a model-zoo name mmengine does not know.
    """
    prefix, _, name = filename.partition('://')
    if prefix in ('open-mmlab', 'openmmlab'):
        name = get_deprecated_model_names().get(name, name)
        table = get_external_models()
    elif prefix in ('torchvision', 'modelzoo'):
        table = get_torchvision_models()
    elif prefix == 'mmcls':
        table = get_mmcls_models()
    else:
        return filename
    if name not in table:
        raise CheckpointError(
            f'Cannot read checkpoint {filename}: mmengine knows no model '
            f'named {name!r} under {prefix}:// (its names for it are in '
            f'{_mmengine_home()}/open_mmlab.json and mmengine\'s own '
            'model-zoo lists).')
    location = table[name]
    return location if '://' in location else osp.join(
        _mmengine_home(), location)


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


def _fetch(location: str) -> Union[str, bytes]:
    """A local path for a local file or a URL (downloaded once into torch's
    hub cache), the content for a storage prefix."""
    if location.startswith(('http://', 'https://')):
        return _download_once(location)
    if '://' in location:
        return _storage_backend(location).get(location)
    path = osp.expanduser(location)
    if not osp.isfile(path):
        raise FileNotFoundError(path)
    return path


def _load(source: Union[str, bytes], safetensors: bool,
          map_location: MapLocation) -> dict:
    """Unpickle ``source`` (a path or the file's content) with
    ``weights_only=True``, or read it as ``.safetensors``."""
    if not safetensors:
        return torch.load(
            io.BytesIO(source) if isinstance(source, bytes) else source,
            map_location=map_location, weights_only=True)
    from safetensors.torch import load
    if isinstance(source, str):
        with open(source, 'rb') as f:
            source = f.read()
    state_dict = load(source)
    if isinstance(map_location, (str, torch.device)):
        state_dict = {k: v.to(map_location) for k, v in state_dict.items()}
    return state_dict


def _load_location(location: str, safetensors: bool,
                   map_location: MapLocation) -> dict:
    """Fetch and load ``location``. A download that cannot be loaded (it
    carries code, or is not a checkpoint) is removed from the hub cache,
    where mmengine's URL loader would find it and unpickle it with
    ``weights_only=False``."""
    source = _fetch(location)
    try:
        return _load(source, safetensors, map_location)
    except Exception:
        if location.startswith(('http://', 'https://')):
            with contextlib.suppress(FileNotFoundError):
                os.remove(source)
        raise


def read_checkpoint(filename: str, map_location: MapLocation = 'cpu') -> dict:
    """Read a checkpoint (``.pth`` or ``.safetensors``) from a local path,
    a URL, a model-zoo name or a storage prefix, into a dict, safely.

    Args:
        filename (str): Local path, ``http(s)://``, ``open-mmlab://``,
            ``torchvision://``, ``mmcls://`` or a ``prefix://`` registered
            with ``mmengine.fileio.register_backend`` (``s3://`` ...).
        map_location: As in :func:`torch.load`; a device (name) for
            ``.safetensors`` files. Defaults to ``'cpu'``.

    Raises:
        CheckpointError: naming the file, when it is missing, unreadable,
            truncated, or holds objects outside the allow-list (such as code
            to run at unpickling time, which is never executed).
    """
    filename = str(filename)
    try:
        checkpoint = _load_location(
            _model_zoo_location(filename), filename.endswith('.safetensors'),
            map_location)
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


# mmengine's loaders of these prefixes download with
# torch.hub.load_state_dict_from_url, whose default is weights_only=False.
DOWNLOAD_PREFIXES = ('http://', 'https://', 'open-mmlab://', 'openmmlab://',
                     'torchvision://', 'modelzoo://', 'mmcls://')


def load_from_download(filename: str, map_location: MapLocation = None
                       ) -> dict:
    """An mmengine checkpoint loader of :data:`DOWNLOAD_PREFIXES`:
    :func:`read_checkpoint` (mmengine names a loader by what follows
    ``load_from_`` in its name: "download")."""
    return read_checkpoint(filename, map_location)


def register_safe_download_loaders() -> None:
    """Make mmengine's ``CheckpointLoader`` read :data:`DOWNLOAD_PREFIXES`
    with :func:`load_from_download`, through its public
    ``register_scheme``: the toolboxes' inference APIs and ``load_from``
    given a URL or a model-zoo name then refuse a pickle that carries code,
    as torch's default does for local files. ``import evit_mm`` calls it;
    calling it again changes nothing.
    """
    CheckpointLoader.register_scheme(
        DOWNLOAD_PREFIXES, load_from_download, force=True)


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
