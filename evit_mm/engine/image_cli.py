"""Image options and checks shared by the demos and the tools:
``--strict``, ``--max-pixels`` (and ``--no-image-check`` for the tools),
the checks made before a model is built (output folders writable, inputs
usable), and the demos' inferencers."""
import argparse
import contextlib
import copy
import os.path as osp
import tempfile
from typing import Any, Callable, Iterator, Optional, Sequence

from mmengine.config import Config

from ..datasets.checked import SkipRecord, check_dataset_images
from ..datasets.images import (DEFAULT_MAX_PIXELS, MAX_PIXELS_ENV, ImageError,
                               ImageScan, scan_images)
from .options import config_scope
from .outputs import (OutputPathError, ensure_writable_dir,
                      ensure_writable_file)
from .quiet import drop_logged, function_registry_fallback


def add_image_check_arguments(parser: argparse.ArgumentParser,
                              dataset: bool = False) -> None:
    """Add ``--strict`` and ``--max-pixels``, and with ``dataset`` (the
    training and test tools) ``--no-image-check``."""
    parser.add_argument(
        '--strict', action='store_true',
        help='stop at the first image that cannot be used instead of '
        'skipping it with a warning')
    parser.add_argument(
        '--max-pixels', type=int,
        help='refuse images declaring more pixels than this (default '
        f'{DEFAULT_MAX_PIXELS:,}, or ${MAX_PIXELS_ENV})')
    if dataset:
        parser.add_argument(
            '--no-image-check', action='store_true',
            help='do not check the images of the datasets (an unusable one '
            'then stops the run where it is read)')


def demo_parser(description: str, task: str) -> argparse.ArgumentParser:
    """The parser of a demo that draws into a folder: image inputs, the
    ``task`` config, ``--weights``, ``--out-dir``, ``--device``,
    ``--strict`` and ``--max-pixels``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('inputs', nargs='+',
                        help='image files and/or folders of images')
    parser.add_argument('config', help=f'{task} config file')
    parser.add_argument('--weights', help='checkpoint file (a trained '
                        'model; without it the weights are random)')
    parser.add_argument('--out-dir', default='outputs',
                        help='folder for vis/ and preds/')
    parser.add_argument('--device', default='cpu', help='e.g. cpu, cuda:0')
    add_image_check_arguments(parser)
    return parser


@contextlib.contextmanager
def check_run_images(cfg: Config,
                     args: argparse.Namespace,
                     dataloaders: Sequence[str],
                     out: Optional[str] = None) -> Iterator[SkipRecord]:
    """Around a training or test run: first the work dir (and ``out``,
    ``--out`` of the test tool) must be writable, and the datasets of
    ``dataloaders`` get their images checked (unless
    ``args.no_image_check``; :func:`check_dataset_images` with
    ``args.strict`` and ``args.max_pixels``: training samples when loaded,
    validation and test sets before their loop, everything first with
    ``--strict``); an unusable image with ``--strict``, or an unwritable
    output, ends the run with its message instead of a traceback
    (:class:`SystemExit`).

    Yields:
        SkipRecord: The run's record of skipped files, in a temporary
        folder removed at the end.
    """
    with tempfile.TemporaryDirectory(prefix='evit_mm_skipped_') as folder:
        record = SkipRecord(osp.join(folder, 'skipped.jsonl'))
        try:
            ensure_writable_dir(cfg.work_dir, '--work-dir')
            if out is not None:
                ensure = ensure_writable_dir \
                    if config_scope(cfg) == 'mmseg' else ensure_writable_file
                ensure(out, '--out')
            if not args.no_image_check:
                check_dataset_images(cfg, dataloaders, record.path,
                                     strict=args.strict,
                                     max_pixels=args.max_pixels)
            yield record
        except (ImageError, OutputPathError) as err:
            raise SystemExit(f'error: {err}') from None


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


def build_inferencer(inferencer: Callable[..., Any], cfg: Config,
                     **kwargs) -> Any:
    """Build an mmengine-style inferencer (``DetInferencer``,
    ``MMSegInferencer``) for ``cfg``.

    The config's visualizer loses its storage backends: the inferencer
    writes its drawings to ``out_dir`` itself, and mmengine warns that it
    cannot add a ``LocalVisBackend`` without a ``save_dir``. mmengine's
    note that the toolbox has no ``FUNCTIONS`` registry is dropped (see
    :mod:`evit_mm.engine.quiet`).

    Args:
        inferencer (callable): The inferencer class.
        cfg (Config): The model's config (not changed).
        **kwargs: The inferencer's other arguments (``weights``, ...).

    Returns:
        The inferencer.
    """
    cfg = copy.deepcopy(cfg)
    if 'visualizer' in cfg:
        cfg.visualizer.vis_backends = []
    with drop_logged(function_registry_fallback(config_scope(cfg))):
        return inferencer(model=cfg, **kwargs)
