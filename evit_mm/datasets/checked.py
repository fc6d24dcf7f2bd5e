"""Datasets whose images are checked without a start-up cost that grows
with the dataset.

``tools/train.py`` and ``tools/test.py`` call :func:`check_dataset_images`
on the run's config. Every image (and segmentation label map) goes through
:func:`evit_mm.datasets.images.check_image`, at the latest moment that
still keeps the guarantee that an unusable file is skipped with its name,
counted, and never stops the run:

* **Training sets**: when a sample is loaded. :class:`CheckImageFiles`
  at the head of the dataset's pipeline checks the sample's files in the
  dataloader worker; for an unusable one it logs one warning naming the file
  and returns ``None``, so mmengine's ``BaseDataset`` loads another random
  sample in its place (its refetch, up to ``max_refetch`` times).
* **Validation and test sets**: before the loop's first iteration.
  :class:`~evit_mm.hooks.ImageCheckHook` checks every image (each rank a
  share, with the dataloader's worker count of processes) and leaves the
  unusable samples out on every rank alike, so each image is either
  evaluated or named as skipped.
* ``strict``: every file when the dataset is built, stopping at the first
  unusable one (:func:`CheckedImageDataset`).

The run's state is one file, a :class:`SkipRecord` the tool makes: its path
is in the config of every part that skips a file (the pipeline transform,
the datasets, the hook), so dataloader workers and ranks all write to it,
and the tool reads it at the end (:func:`report_skipped_images`).
"""
import contextlib
import functools
import json
import multiprocessing
import os
import os.path as osp
from typing import Any, Callable, Dict, List, Optional, Sequence

from mmengine.config import Config, ConfigDict
from mmengine.logging import print_log
from mmengine.registry import DATASETS, TRANSFORMS

from .images import EXIT_SKIPPED, ImageError, check_image, warn

IMAGE_KEYS = ('img_path', 'seg_map_path')
# The dataloaders whose sets ImageCheckHook checks before their loop.
LOOP_DATALOADERS = ('val_dataloader', 'test_dataloader')


class SkipRecord:
    """The files a run skipped, shared by all its processes: one JSON line
    ``[path, reason]`` per file, appended to ``path``.

    Args:
        path (str): The record file (its folder is made when needed).
    """

    def __init__(self, path: str) -> None:
        self.path = path

    def read(self) -> Dict[str, str]:
        """The recorded files and their reasons."""
        if not osp.exists(self.path):
            return {}
        with open(self.path) as f:
            return dict(json.loads(line) for line in f if line.strip())

    def add(self, path: str, reason: str) -> bool:
        """Record ``path``; False if it already was."""
        if path in self.read():
            return False
        os.makedirs(osp.dirname(osp.abspath(self.path)), exist_ok=True)
        with open(self.path, 'a') as f:
            f.write(json.dumps([path, reason]) + '\n')
        return True


def skip(record: Optional[SkipRecord], path: str, reason: str) -> None:
    """One warning line for an unusable file, the first time ``record``
    (if any) gets it."""
    if record is None or record.add(path, reason):
        warn(f'Skipped {path}: {reason}')


def _record(record_file: Optional[str]) -> Optional[SkipRecord]:
    return None if record_file is None else SkipRecord(record_file)


def unusable(path: str, max_pixels: Optional[int] = None) -> Optional[str]:
    """Why :func:`~evit_mm.datasets.images.check_image` refuses ``path``,
    or None when the file is usable."""
    try:
        check_image(path, max_pixels)
    except ImageError as err:
        return err.reason
    return None


@TRANSFORMS.register_module()
class CheckImageFiles:
    """Check a sample's files when it is loaded; put first in a training
    pipeline.

    Returns the sample unchanged if its files are usable, else ``None``
    after one warning naming the file and the reason: a training dataset
    (mmengine's ``BaseDataset``) then loads another random sample instead.
    Results are remembered for the life of the process (the dataloader
    worker), so later epochs of persistent workers pay no second check.

    Args:
        max_pixels (int, optional): The pixel limit of
            :func:`~evit_mm.datasets.images.check_image`.
        keys (Sequence[str]): The sample's fields naming files.
        record_file (str, optional): The run's :class:`SkipRecord`; without
            it, a file is named each time it is skipped.
    """

    def __init__(self,
                 max_pixels: Optional[int] = None,
                 keys: Sequence[str] = IMAGE_KEYS,
                 record_file: Optional[str] = None) -> None:
        self.max_pixels = max_pixels
        self.keys = tuple(keys)
        self.record = _record(record_file)
        self._reasons: Dict[str, Optional[str]] = {}

    def __call__(self, results: dict) -> Optional[dict]:
        for key in self.keys:
            path = results.get(key)
            if path and path not in self._reasons:
                self._reasons[path] = unusable(path, self.max_pixels)
            reason = self._reasons.get(path)
            if reason is not None:
                skip(self.record, path, reason)
                return None
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(max_pixels={self.max_pixels})'


def sample_files(dataset) -> List[List[str]]:
    """The files (``img_path``, ``seg_map_path``) of each sample."""
    return [[info[key] for key in IMAGE_KEYS if info.get(key)]
            for info in (dataset.get_data_info(i)
                         for i in range(len(dataset)))]


def find_unusable(samples: List[Sequence[str]],
                  max_pixels: Optional[int] = None,
                  workers: int = 1,
                  rank: int = 0,
                  world_size: int = 1,
                  strict: bool = False) -> Dict[str, Optional[str]]:
    """Check this rank's share of ``samples`` (every ``world_size``-th,
    from ``rank``).

    Args:
        samples (list[list[str]]): The files of each sample.
        max_pixels (int, optional): The pixel limit.
        workers (int): Processes checking the files.
        rank (int): This process's rank.
        world_size (int): The number of ranks sharing the work.
        strict (bool): Raise the first unusable file's error.

    Returns:
        dict: For each file of the share, the reason it is unusable, or
        None.
    """
    paths = [path for sample in samples[rank::world_size] for path in sample]
    check = functools.partial(unusable, max_pixels=max_pixels)
    with contextlib.ExitStack() as stack:
        if workers > 1:
            pool = stack.enter_context(
                multiprocessing.get_context('fork').Pool(workers))
            reasons = pool.imap(check, paths, chunksize=64)
        else:
            reasons = map(check, paths)
        results: Dict[str, Optional[str]] = {}
        for path, reason in zip(paths, reasons):
            if reason is not None and strict:
                raise ImageError(path, reason)
            results[path] = reason
    return results


def apply_results(dataset, results: Dict[str, Optional[str]],
                  record: Optional[SkipRecord] = None) -> bool:
    """Leave the samples with an unusable file out of ``dataset`` (checked
    by :func:`find_unusable`), with one warning per file, and log the
    count.

    Returns:
        bool: Whether any sample was left out.

    Raises:
        ImageError: when no sample is usable.
    """
    samples = sample_files(dataset)
    keep = []
    for index, paths in enumerate(samples):
        bad = [p for p in paths if results.get(p) is not None]
        if not bad:
            keep.append(index)
        else:
            skip(record, bad[0], results[bad[0]])
    if not keep:
        raise ImageError(f'none of the {len(samples)} samples of '
                         f'{type(dataset).__name__} has usable images')
    if len(keep) < len(samples):
        dataset.get_subset_(keep)
    print_log(f'Checked the images of {len(samples)} samples of '
              f'{type(dataset).__name__}: {len(samples) - len(keep)} '
              'skipped.', logger='current')
    return len(keep) < len(samples)


CHECK_TIMES = ('build', 'load')


@DATASETS.register_module()
def CheckedImageDataset(dataset: dict,
                        strict: bool = False,
                        max_pixels: Optional[int] = None,
                        workers: int = 1,
                        when: str = 'build',
                        record_file: Optional[str] = None):
    """Build ``dataset`` with its files checked (see the module's notes).

    Args:
        dataset (dict): The dataset's config (an mmengine ``BaseDataset``:
            mmdet, mmseg and mmpretrain datasets are).
        strict (bool): Raise at the first unusable file instead of skipping
            it; only with ``when='build'``.
        max_pixels (int, optional): The pixel limit of
            :func:`~evit_mm.datasets.images.check_image`.
        workers (int): Processes checking the files (``'build'``).
        when (str): ``'build'``: every file now, the unusable samples left
            out. ``'load'`` (training sets): each sample when it is loaded
            (:class:`CheckImageFiles`), an unusable one replaced by another
            sample.
        record_file (str, optional): The run's :class:`SkipRecord`.

    Returns:
        The built dataset itself (its own type).

    Raises:
        ImageError: with ``strict``, for the first unusable file; and when
            no sample is usable (``'build'``).
        ValueError: for an unknown ``when``, ``strict`` with ``'load'``, or
            ``'load'`` for a test-mode dataset (which cannot load another
            sample in place of one).
    """
    if when not in CHECK_TIMES:
        raise ValueError(f'when={when!r}; allowed: {list(CHECK_TIMES)}')
    if strict and when != 'build':
        raise ValueError(f"strict=True needs when='build', not {when!r}")
    built = DATASETS.build(dataset)
    if not hasattr(built, 'get_subset_'):
        raise TypeError(f'{type(built).__name__} is not an mmengine '
                        'BaseDataset; its images cannot be checked.')
    built.full_init()
    if when == 'load':
        if built.test_mode:
            raise ValueError(
                f"when='load' needs a training dataset; this "
                f'{type(built).__name__} has test_mode=True, and cannot '
                'load another sample in place of an unusable one.')
        built.pipeline.transforms.insert(
            0, CheckImageFiles(max_pixels, record_file=record_file))
        return built
    results = find_unusable(sample_files(built), max_pixels, workers,
                            strict=strict)
    apply_results(built, results, _record(record_file))
    return built


def map_datasets(dataset: dict, replace: Callable[[dict], Any]) -> dict:
    """The config ``dataset`` with each dataset it reads (itself, or those
    inside wrappers: ``dataset=``/``datasets=`` of RepeatDataset,
    ConcatDataset, ...) replaced by ``replace(its config)``; a
    :func:`CheckedImageDataset` counts as the dataset it checks."""
    if dataset.get('type') == 'CheckedImageDataset':
        return map_datasets(dataset['dataset'], replace)
    if 'datasets' in dataset:
        return dict(dataset, datasets=[map_datasets(inner, replace)
                                       for inner in dataset['datasets']])
    if 'dataset' in dataset:
        return dict(dataset,
                    dataset=map_datasets(dataset['dataset'], replace))
    return replace(dataset)


def check_dataset_images(cfg: Config,
                         dataloaders: Sequence[str],
                         record_file: str,
                         strict: bool = False,
                         max_pixels: Optional[int] = None) -> Config:
    """Have the images of ``cfg``'s ``dataloaders`` (e.g.
    ``'train_dataloader'``) checked: the training set's samples when
    loaded (a :func:`CheckedImageDataset` with ``when='load'``), the
    validation and test sets before their loop by the
    :class:`~evit_mm.hooks.ImageCheckHook` added to ``custom_hooks``, with
    as many processes as the dataloader has workers; with ``strict``, all
    of them when built.

    Args:
        cfg (Config): The run's config; changed in place.
        dataloaders (Sequence[str]): The dataloaders to check; those the
            config lacks (or sets to None) are left alone.
        record_file (str): The run's :class:`SkipRecord`, read by
            :func:`report_skipped_images` at the end.
        strict (bool): Check everything before the first iteration and
            stop at the first unusable file.
        max_pixels (int, optional): The pixel limit.

    Returns:
        Config: ``cfg``.
    """
    before_loop = {}
    for name in dataloaders:
        loader = cfg.get(name)
        if not loader or 'dataset' not in loader:
            continue
        workers = max(1, loader.get('num_workers', 0))
        if name in LOOP_DATALOADERS and not strict:
            before_loop[name] = workers
            continue
        options = dict(strict=strict, max_pixels=max_pixels,
                       record_file=record_file, workers=workers,
                       when='build' if strict else 'load')
        loader.dataset = ConfigDict(map_datasets(
            loader.dataset,
            lambda inner: dict(type='CheckedImageDataset', dataset=inner,
                               **options)))
    hooks = [h for h in cfg.get('custom_hooks', [])
             if h.get('type') != 'ImageCheckHook']
    cfg.custom_hooks = hooks + [
        dict(type='ImageCheckHook', record_file=record_file,
             dataloaders=before_loop, max_pixels=max_pixels)
    ]
    return cfg


def report_skipped_images(record: SkipRecord) -> int:
    """Log how many dataset files the run of ``record`` skipped, if any.

    Returns:
        int: The exit status: 0, or ``EXIT_SKIPPED`` when a file was
        skipped.
    """
    skipped = record.read()
    if skipped:
        warn(f'{len(skipped)} file(s) of the datasets were skipped (see the '
             'warnings above): ' + ', '.join(sorted(skipped)))
    return EXIT_SKIPPED if skipped else 0
