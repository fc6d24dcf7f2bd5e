"""Output paths checked before a run does any work."""
import os
import os.path as osp
import tempfile


class OutputPathError(ValueError):
    """An output folder or file that cannot be written."""


def ensure_writable_dir(path: str, option: str) -> str:
    """Create folder ``path`` if needed and prove it writable by creating
    and removing a file in it (permission bits alone say nothing for root).

    Args:
        path (str): The folder.
        option (str): The option that named it, for the message
            (e.g. ``'--out-dir'``).

    Returns:
        str: ``path``.

    Raises:
        OutputPathError: naming the option, the path and the reason.
    """
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as err:
        raise OutputPathError(
            f'{option} {path!r} is not a writable folder: '
            f'{err.strerror or err}') from None
    return path


def ensure_writable_file(path: str, option: str) -> str:
    """:func:`ensure_writable_dir` for the folder of file ``path``, and
    ``path`` itself must not be a folder; returns ``path``."""
    if osp.isdir(path):
        raise OutputPathError(f'{option} {path!r} is a folder; a file name '
                              'is needed.')
    ensure_writable_dir(osp.dirname(osp.abspath(path)), option)
    return path
