"""Datasets whose images are checked before the first iteration.

``tools/train.py`` and ``tools/test.py`` wrap each dataset of a run in
:func:`CheckedImageDataset` (through :func:`check_dataset_images`): when the
runner builds the dataloaders, before training or testing starts, every
image (and segmentation label map) of the dataset goes through
:func:`evit_mm.datasets.images.check_image`. A file that cannot be used is
skipped with one warning line naming it and the reason, and left out of the
dataset; with ``strict`` the first one stops the run instead, before any
iteration. :func:`report_skipped_images` ends the run with the count.
"""
import multiprocessing
from typing import Iterator, List, Optional, Sequence, Tuple

from mmengine.config import Config, ConfigDict
from mmengine.logging import print_log
from mmengine.registry import DATASETS

from .images import (ImageError, ImageScan, check_image,
                     skip_or_raise, warn)

IMAGE_KEYS = ('img_path', 'seg_map_path')
# What the datasets of this process skipped, for report_skipped_images.
_SKIPPED = ImageScan()


def _check_sample(paths: Sequence[str],
                  max_pixels: Optional[int]) -> Optional[ImageError]:
    for path in paths:
        try:
            check_image(path, max_pixels)
        except ImageError as err:
            return err
    return None


def _check_sample_args(args: Tuple[Sequence[str], Optional[int]]):
    return _check_sample(*args)


def _check_all(samples: List[Sequence[str]], max_pixels: Optional[int],
               workers: int) -> Iterator[Optional[ImageError]]:
    """The first error of each sample (None for a usable one), in order."""
    if workers <= 1:
        for paths in samples:
            yield _check_sample(paths, max_pixels)
        return
    with multiprocessing.get_context('fork').Pool(workers) as pool:
        yield from pool.imap(_check_sample_args,
                             [(paths, max_pixels) for paths in samples],
                             chunksize=64)


@DATASETS.register_module()
def CheckedImageDataset(dataset: dict,
                        strict: bool = False,
                        max_pixels: Optional[int] = None,
                        workers: int = 1):
    """Build ``dataset`` and leave out the samples whose files cannot be
    used.

    Args:
        dataset (dict): The dataset's config (an mmengine ``BaseDataset``:
            mmdet, mmseg and mmpretrain datasets are).
        strict (bool): Raise at the first unusable file instead.
        max_pixels (int, optional): The pixel limit of
            :func:`~evit_mm.datasets.images.check_image`.
        workers (int): Processes checking the files.

    Returns:
        The built dataset itself (its own type), reduced to the usable
        samples.

    Raises:
        ImageError: with ``strict``, for the first unusable file; and when
            no sample is usable.
    """
    built = DATASETS.build(dataset)
    if not hasattr(built, 'get_subset_'):
        raise TypeError(f'{type(built).__name__} is not an mmengine '
                        'BaseDataset; its images cannot be checked.')
    built.full_init()
    samples = []
    for index in range(len(built)):
        info = built.get_data_info(index)
        samples.append([info[key] for key in IMAGE_KEYS if info.get(key)])
    keep, skipped = [], 0
    for index, error in enumerate(_check_all(samples, max_pixels, workers)):
        if error is None:
            keep.append(index)
            continue
        skipped += 1
        skip_or_raise(_SKIPPED, error, strict)
    if not keep:
        raise ImageError(f'none of the {len(samples)} samples of '
                         f'{type(built).__name__} has usable images')
    if skipped:
        built.get_subset_(keep)
    print_log(f'Checked the images of {len(samples)} samples of '
              f'{type(built).__name__}: {skipped} skipped.', logger='current')
    return built


def _wrap(dataset: ConfigDict, options: dict) -> ConfigDict:
    """``dataset`` in a :func:`CheckedImageDataset`, or for a dataset
    wrapper (``dataset=``/``datasets=``: RepeatDataset, ConcatDataset, ...)
    its inner datasets; one already checked only takes the new
    options."""
    if dataset.get('type') == 'CheckedImageDataset':
        dataset.update(options)
        return dataset
    if 'datasets' in dataset:
        dataset.datasets = [_wrap(d, options) for d in dataset.datasets]
        return dataset
    if 'dataset' in dataset:
        dataset.dataset = _wrap(dataset.dataset, options)
        return dataset
    return ConfigDict(type='CheckedImageDataset', dataset=dataset, **options)


def check_dataset_images(cfg: Config,
                         dataloaders: Sequence[str],
                         strict: bool = False,
                         max_pixels: Optional[int] = None) -> Config:
    """Make the datasets of ``cfg``'s ``dataloaders`` (e.g.
    ``'train_dataloader'``) :func:`CheckedImageDataset` s, checked with as
    many processes as the dataloader has workers.

    Args:
        cfg (Config): The run's config; changed in place.
        dataloaders (Sequence[str]): The dataloaders to check; those the
            config lacks (or sets to None) are left alone.
        strict (bool): Stop at the first unusable file.
        max_pixels (int, optional): The pixel limit.

    Returns:
        Config: ``cfg``.
    """
    for name in dataloaders:
        loader = cfg.get(name)
        if not loader or 'dataset' not in loader:
            continue
        options = dict(strict=strict, max_pixels=max_pixels,
                       workers=max(1, loader.get('num_workers', 0)))
        loader.dataset = _wrap(loader.dataset, options)
    return cfg


def report_skipped_images() -> int:
    """Log how many dataset files were skipped in this process, if any, and
    forget them.

    Returns:
        int: The exit status: 0, or ``EXIT_SKIPPED`` when a file was
        skipped.
    """
    skipped = _SKIPPED.skipped
    if skipped:
        warn(f'{len(skipped)} file(s) of the datasets were skipped (see the '
             'warnings before the first iteration): ' +
             ', '.join(path for path, _ in skipped))
    code = _SKIPPED.exit_code
    _SKIPPED.skipped = []
    return code
