"""A fix mmengine 0.10.7 needs on this stack, kept out of site-packages
(the other one, resuming under torch's ``weights_only`` loading, is
:func:`evit_mm.checkpoint.register_safe_globals`, run by ``import evit_mm``).

* Distributed training on CPU: mmengine's launchers call
  ``torch.cuda.set_device`` and its runner gives DDP ``device_ids=[rank]``,
  both of which fail without a GPU. :func:`setup_distributed` joins the
  process group with gloo and asks for a device-less DDP there.
"""
import contextlib
from typing import Iterator

import torch
from mmengine.config import Config
from mmengine.dist import init_dist, is_distributed
from mmengine.logging import print_log
from mmengine.registry import MODEL_WRAPPERS
from torch.nn.parallel import DistributedDataParallel


@contextlib.contextmanager
def _without_cuda_device_selection() -> Iterator[None]:
    """Make ``torch.cuda.set_device`` a no-op for the duration (only used
    where there is no CUDA device to select)."""
    set_device = torch.cuda.set_device
    torch.cuda.set_device = lambda device: None
    try:
        yield
    finally:
        torch.cuda.set_device = set_device


def setup_distributed(cfg: Config) -> None:
    """Prepare ``cfg`` (launcher already set) for distributed runs on a
    machine without CUDA.

    With CUDA, or with ``cfg.launcher == 'none'``, nothing changes and the
    runner sets up NCCL as usual. Without CUDA this joins the process group
    through mmengine's launcher logic (torchrun, Slurm or MPI environment)
    with the gloo backend, and makes the runner wrap the model in a DDP
    without ``device_ids``, as PyTorch requires for CPU modules.

    Args:
        cfg (Config): The run's config; ``model_wrapper_cfg`` is set in place.
    """
    launcher = cfg.get('launcher', 'none')
    if launcher == 'none' or torch.cuda.is_available():
        return
    if not is_distributed():
        dist_cfg = dict(cfg.get('env_cfg', {}).get('dist_cfg', {}))
        if dist_cfg.get('backend', 'gloo') != 'gloo':
            print_log(
                f'No CUDA device: using the gloo backend instead of '
                f'{dist_cfg["backend"]!r}.', logger='current')
        dist_cfg['backend'] = 'gloo'
        with _without_cuda_device_selection():
            init_dist(launcher, **dist_cfg)
    wrapper = dict(cfg.get('model_wrapper_cfg') or dict(
        type='MMDistributedDataParallel',
        broadcast_buffers=False,
        find_unused_parameters=cfg.get('find_unused_parameters', False)))
    wrapper.setdefault('type', 'MMDistributedDataParallel')
    wrapper_type = MODEL_WRAPPERS.get(wrapper['type'])
    if isinstance(wrapper_type, type) and issubclass(
            wrapper_type, DistributedDataParallel):
        wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper


def leave_distributed() -> None:
    """Wait for every rank, then leave the process group, if one was joined.

    Call it when a run has finished. A process that exits while its gloo
    group is still alive can abort during interpreter shutdown
    ("terminate called without an active exception"), failing a run that
    succeeded.
    """
    if torch.distributed.is_available() and \
            torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
