"""The start of a run's log: a short, true header on the screen, and the
whole environment and config in the work dir's log file."""
import logging
import os.path as osp

import torch
from mmengine.logging import MMLogger
from mmengine.runner import Runner
from mmengine.utils.dl_utils import collect_env

from .quiet import DropStarting

# What the screen shows of mmengine's environment report; the log file
# keeps all of it (compiler flags, CUDA paths, ...).
SHOWN_ENV = ('Python', 'PyTorch', 'TorchVision', 'OpenCV', 'MMEngine')


def _devices() -> str:
    if not torch.cuda.is_available():
        return 'CPU'
    return f'{torch.cuda.device_count()} CUDA GPU(s)'


# The starts of the long reports of a run, kept off the screen; the log
# file's handler shows them.
FILE_ONLY = ('\n' + '-' * 60 + '\nSystem environment:', 'Config:\n',
             'Hooks will be executed in the following order',
             'paramwise_options -- ')


class ConciseLogRunner(Runner):
    """mmengine's :class:`~mmengine.runner.Runner` whose log starts with a
    header that fits a screen.

    mmengine's own header reports the number of processes as "GPU number"
    (1 on a machine without a GPU) and the config's distributed backend
    even when the run is not distributed, then prints the whole config,
    the order of the hooks and each parameter-wise optimizer setting: a
    few hundred lines before the first loss. Here the screen gets the
    versions, the device, the processes and where the config was saved;
    the log file in the work dir keeps all of mmengine's reports.
    """

    def build_logger(self, *args, **kwargs) -> MMLogger:
        """mmengine's logger, whose screen handlers leave mmengine's long
        reports to the log file, and which starts the log with the short
        header (mmengine's environment report and config come next)."""
        logger = super().build_logger(*args, **kwargs)
        for handler in logger.handlers:
            if not isinstance(handler, logging.FileHandler):
                handler.addFilter(DropStarting(FILE_ONLY))
        env = collect_env()
        shown = {key: env[key] for key in SHOWN_ENV if key in env}
        shown.update({
            'device': _devices(),
            'processes': self.world_size,
            'launcher': self.launcher,
            'seed': self.seed,
        })
        if self.distributed:  # the backend joined, not the config's
            shown['distributed backend'] = torch.distributed.get_backend()
        # where mmengine's dump_config() writes it
        shown['config'] = osp.join(
            self.work_dir,
            osp.basename(self.cfg.filename) if self.cfg.filename else
            f'{self.timestamp}.py')
        shown['full log'] = logger.log_file
        logger.info('Environment:\n' + _lines(shown))
        return logger


def _lines(items: dict) -> str:
    return '\n'.join(f'    {key}: {value}' for key, value in items.items())
