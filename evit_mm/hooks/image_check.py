"""The run-time side of the dataset image checks (see
:mod:`evit_mm.datasets.checked`): validation and test sets checked before
their loop's first iteration, and the skipped files counted over all
ranks."""
from typing import Dict, Iterator, Optional, Set

from mmengine.dist import all_gather_object, get_dist_info
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from ..datasets.checked import (SkipRecord, apply_results, find_unusable,
                                map_datasets, sample_files)
from ..datasets.images import warn


def _merged(part: dict) -> dict:
    """The union of ``part`` over all ranks."""
    merged = {}
    for other in all_gather_object(part):
        merged.update(other)
    return merged


def _leaves(dataset) -> Iterator:
    """The datasets that hold samples: ``dataset``, or those inside it
    (dataset wrappers: ``datasets``, ``dataset``)."""
    inner = getattr(dataset, 'datasets', None) or (
        [dataset.dataset] if hasattr(dataset, 'dataset') else [])
    if not inner:
        yield dataset
    for each in inner:
        yield from _leaves(each)


@HOOKS.register_module()
class ImageCheckHook(Hook):
    """Checks the images of validation and test sets before their loop,
    and counts the skipped files of all ranks.

    * Before validation or testing (the first time): every file of each
      dataset of the loop's dataloader is checked, each rank a share with
      the dataloader's number of worker processes, and the results are
      merged over the ranks. Samples with an unusable file are left out of
      their dataset (its own type kept) on every rank alike, and the loop
      gets a dataloader built from its config around the checked datasets
      (dataset wrappers built again, their inner datasets kept).
    * After each training epoch: one warning naming the files skipped
      since the last one (by any rank or dataloader worker).
    * At the end of the run: the files skipped by any rank are added to
      this rank's record, which the tool reports
      (:func:`~evit_mm.datasets.checked.report_skipped_images`).

    Args:
        record_file (str): The run's
            :class:`~evit_mm.datasets.checked.SkipRecord`.
        dataloaders (dict): The dataloaders to check before their loop
            (``'val_dataloader'``, ``'test_dataloader'``), each with its
            number of checking processes.
        max_pixels (int, optional): The pixel limit of
            :func:`~evit_mm.datasets.images.check_image`.
    """

    priority = 'VERY_HIGH'

    def __init__(self,
                 record_file: str,
                 dataloaders: Optional[Dict[str, int]] = None,
                 max_pixels: Optional[int] = None) -> None:
        self.record = SkipRecord(record_file)
        self.unchecked = dict(dataloaders or {})
        self.max_pixels = max_pixels
        self.announced: Set[str] = set()

    def before_val(self, runner) -> None:
        self._check(runner, 'val_dataloader', runner.val_loop)

    def before_test(self, runner) -> None:
        self._check(runner, 'test_dataloader', runner.test_loop)

    def _check(self, runner, name: str, loop) -> None:
        workers = self.unchecked.pop(name, None)
        if workers is None:
            return
        rank, world_size = get_dist_info()
        leaves = list(_leaves(loop.dataloader.dataset))
        results: Dict[str, Optional[str]] = {}
        for dataset in leaves:
            results.update(find_unusable(sample_files(dataset),
                                         self.max_pixels, workers, rank,
                                         world_size))
        results = _merged(results)
        left_out = [apply_results(d, results, self.record) for d in leaves]
        if not any(left_out):
            return
        loader_cfg = runner.cfg.get(name)
        if not loader_cfg:
            raise ValueError(f'ImageCheckHook rebuilds the {name} without '
                             'the unusable samples from the runner\'s '
                             f'config, which has no {name}.')
        checked = iter(leaves)
        dataset = map_datasets(loader_cfg['dataset'], lambda _: next(checked))
        randomness = runner.cfg.get('randomness') or {}
        # seeded as mmengine's loops build their dataloaders
        loop.dataloader = runner.build_dataloader(
            dict(loader_cfg, dataset=dataset), seed=runner.seed,
            diff_rank_seed=randomness.get('diff_rank_seed', False))

    def after_train_epoch(self, runner) -> None:
        skipped = _merged(self.record.read())
        new = sorted(set(skipped) - self.announced)
        if new:
            self.announced.update(new)
            warn(f'{len(skipped)} file(s) of the datasets skipped so far; '
                 f'new since the last epoch: {", ".join(new)}')

    def after_run(self, runner) -> None:
        for path, reason in _merged(self.record.read()).items():
            self.record.add(path, reason)
