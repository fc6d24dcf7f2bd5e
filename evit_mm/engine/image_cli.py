"""Image options and checks shared by the demos and the tools:
``--strict`` and ``--max-pixels``, and the checks a demo makes before it
builds a model (output folder writable, inputs usable)."""
import argparse
from typing import Optional, Sequence

from mmengine.config import Config

from ..datasets.images import (DEFAULT_MAX_PIXELS, MAX_PIXELS_ENV, ImageError,
                               ImageScan, scan_images)
from ..fileio import OutputPathError, ensure_writable_dir
from .options import config_scope


def add_image_check_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--strict`` and ``--max-pixels``."""
    parser.add_argument(
        '--strict', action='store_true',
        help='stop at the first image that cannot be used instead of '
        'skipping it with a warning')
    parser.add_argument(
        '--max-pixels', type=int,
        help='refuse images declaring more pixels than this (default '
        f'{DEFAULT_MAX_PIXELS:,}, or ${MAX_PIXELS_ENV})')


def demo_images(inputs: Sequence[str], out_dir: Optional[str], strict: bool,
                max_pixels: Optional[int]) -> ImageScan:
    """Check a demo's output folder (``--out-dir``) and its inputs before
    any model is built.

    Args:
        inputs (Sequence[str]): Image files and folders.
        out_dir (str, optional): The folder the demo writes to, if any.
        strict (bool): Exit at the first unusable input.
        max_pixels (int, optional): The pixel limit.

    Returns:
        ImageScan: The usable images and the skipped files.

    Raises:
        SystemExit: with the error, for an unwritable ``out_dir``, with
            ``strict`` for the first unusable input, and when no input is
            usable.
    """
    try:
        if out_dir is not None:
            ensure_writable_dir(out_dir, '--out-dir')
        return scan_images(inputs, max_pixels=max_pixels, strict=strict)
    except (ImageError, OutputPathError) as err:
        raise SystemExit(f'error: {err}') from None


DEMOS = dict(mmdet='demo/image_demo.py', mmseg='demo/image_seg_demo.py',
             mmpretrain='demo/image_classification_demo.py')


def require_scope(config: str, scope: str) -> Config:
    """Load ``config``; exit with a pointer to the right demo unless it is
    a ``scope`` (mmdet, mmseg, mmpretrain) config."""
    cfg = Config.fromfile(config)
    found = config_scope(cfg)
    if found != scope:
        raise SystemExit(f'error: {config} is a {found} config; this demo '
                         f'runs {scope} models. Use {DEMOS[found]} for it.')
    return cfg
