"""What ``tools/train.py`` and ``tools/test.py`` share: the launcher
options and building the runner with the runtime fixes in place."""
import argparse
import os
from typing import Optional, Sequence

from mmengine.config import Config, DictAction
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from ..models.channel_check import check_backbone_channels
from .reliability import harden_runtime
from .run_log import ConciseLogRunner
from .runtime import setup_distributed


def add_launch_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--cfg-options``, ``--launcher`` and ``--local-rank`` (the last
    one passed by ``torch.distributed.launch``)."""
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config settings, key=value (a list: key="[a,b]" or '
        'key=a,b); merged into the config')
    parser.add_argument('--launcher',
                        choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def parse_tool_args(parser: argparse.ArgumentParser,
                    argv: Optional[Sequence[str]] = None
                    ) -> argparse.Namespace:
    """Parse, and export ``LOCAL_RANK`` when no launcher set it."""
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def build_runner(cfg: Config, strict_load: bool) -> Runner:
    """The config's runner (``runner_type`` or mmengine's ``Runner``), with
    every checkpoint read safely and checked against the model
    (``strict_load``: exact fit, as for testing; see :func:`harden_runtime`),
    atomic checkpoint writes, distributed runs set up for machines without
    a GPU, and the neck's channels checked against the backbone's (see
    :func:`evit_mm.models.channel_check.check_backbone_channels`);
    mmengine's ``Runner`` logs a short header on the screen
    (:class:`ConciseLogRunner`)."""
    harden_runtime(cfg, strict_load=strict_load)
    setup_distributed(cfg)
    runner = RUNNERS.build(cfg) if 'runner_type' in cfg else \
        ConciseLogRunner.from_cfg(cfg)
    check_backbone_channels(runner.model)
    return runner
