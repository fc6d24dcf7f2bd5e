"""Messages of the toolboxes that tell a user of evit_mm nothing they can
act on, each dropped where it is raised, with the reason. Every other
warning is left as it is.

- ``pkg_resources is deprecated as an API`` (setuptools 80): mmengine
  0.10.7 imports *and reloads* ``pkg_resources`` each time a config names a
  base of another package (``'mmdet::...'``), once per base. mmengine (and
  mmcv's build) need ``pkg_resources``, so setuptools stays below 81, where
  it is removed.
- mmengine's ``FileClient`` / ``HardDiskBackend`` deprecation notes: its
  ``CheckpointHook.before_train`` builds a ``FileClient`` on every run,
  kept "for backward compatibility" and unused unless a config sets
  ``file_client_args`` (ours never do).
- ``Failed to search registry with scope "mmdet" in the "function"
  registry tree``: mmengine's inferencers look their collate function up
  in the toolbox's ``FUNCTIONS`` registry, which mmdet does not have; the
  fallback they then take is the right one.
"""
import logging
import warnings
from contextlib import contextmanager
from typing import Iterator

from mmengine.logging import MMLogger

PKG_RESOURCES_DEPRECATION = 'pkg_resources is deprecated as an API'
FILE_CLIENT_DEPRECATION = ('"FileClient" will be deprecated',
                           '"HardDiskBackend" is the alias of')


def function_registry_fallback(scope: str) -> str:
    """The start of mmengine's note that ``scope`` has no ``FUNCTIONS``
    registry."""
    return (f'Failed to search registry with scope "{scope}" in the '
            '"function" registry tree')


def ignore_pkg_resources_deprecation() -> None:
    """Ignore setuptools' ``pkg_resources`` deprecation warning (raised
    again at each reload by mmengine's config loader), and only that."""
    warnings.filterwarnings('ignore', message=PKG_RESOURCES_DEPRECATION,
                            category=UserWarning)


class DropStarting(logging.Filter):
    """Drops the log records whose message starts with one of ``starts``.

    Args:
        starts (tuple[str]): Beginnings of the messages to drop.
    """

    def __init__(self, starts: tuple) -> None:
        super().__init__()
        self.starts = starts

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.starts)


@contextmanager
def drop_logged(*starts: str) -> Iterator[None]:
    """Within the block, drop the records of mmengine's current logger whose
    message starts with one of ``starts``; every other record passes.

    Args:
        *starts (str): Beginnings of the messages to drop.
    """
    logger = MMLogger.get_current_instance()
    dropped = DropStarting(starts)
    logger.addFilter(dropped)
    try:
        yield
    finally:
        logger.removeFilter(dropped)
