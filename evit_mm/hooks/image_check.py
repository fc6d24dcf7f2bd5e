"""The run-time side of the dataset image checks (see
:mod:`evit_mm.datasets.checked`): validation and test sets checked before
their loop's first iteration, and the skipped files counted over all
ranks."""
from typing import Dict, Iterator, Optional, Set

from mmengine.dist import all_gather_object, get_dist_info
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from ..datasets.checked import (KNOWN_RESULTS, PENDING_ATTR, apply_results,
                                find_unusable, gathered_skips, run_record,
                                sample_files)
from ..datasets.images import warn


def _datasets(dataset) -> Iterator:
    """``dataset`` and the datasets inside it (dataset wrappers)."""
    yield dataset
    for inner in getattr(dataset, 'datasets', None) or []:
        yield from _datasets(inner)
    inner = getattr(dataset, 'dataset', None)
    if inner is not None:
        yield from _datasets(inner)


def _merged(part: dict) -> dict:
    """The union of ``part`` over all ranks."""
    merged = {}
    for other in all_gather_object(part):
        merged.update(other)
    return merged


@HOOKS.register_module()
class ImageCheckHook(Hook):
    """Checks the validation and test sets a
    :func:`~evit_mm.datasets.checked.CheckedImageDataset` left pending, and
    counts the skipped files of all ranks.

    * Before validation or testing (the first time): every file of each
      pending dataset of the loop is checked, each rank a share with the
      dataset's number of processes, and the results are merged over the
      ranks. If any file is unusable, the loop's dataloader is built again
      from the config, with those samples left out on every rank alike.
    * After each training epoch: one warning naming the files skipped
      since the last one (by any rank or dataloader worker).
    * At the end of the run: the skipped files of all ranks are kept for
      :func:`~evit_mm.datasets.checked.report_skipped_images`.
    """

    priority = 'VERY_HIGH'

    def __init__(self) -> None:
        self._announced: Set[str] = set()

    def before_val(self, runner) -> None:
        self._check(runner, runner.val_loop, 'val_dataloader')

    def before_test(self, runner) -> None:
        self._check(runner, runner.test_loop, 'test_dataloader')

    def _check(self, runner, loop, name: str) -> None:
        pending = [d for d in _datasets(loop.dataloader.dataset)
                   if getattr(d, PENDING_ATTR, None)]
        if not pending:
            return
        rank, world_size = get_dist_info()
        results: Dict[str, Optional[str]] = {}
        for dataset in pending:
            options = getattr(dataset, PENDING_ATTR)
            delattr(dataset, PENDING_ATTR)
            results.update(find_unusable(sample_files(dataset), rank=rank,
                                         world_size=world_size, **options))
        results = _merged(results)
        KNOWN_RESULTS.update(results)
        if all(reason is None for reason in results.values()):
            for dataset in pending:
                apply_results(dataset, results)
            return
        # Seeded as mmengine's BaseLoop builds a loop's dataloader.
        loop.dataloader = runner.build_dataloader(
            runner.cfg.get(name), seed=runner.seed,
            diff_rank_seed=runner._randomness_cfg.get('diff_rank_seed',
                                                      False))

    def after_train_epoch(self, runner) -> None:
        skipped = _merged(run_record().read())
        new = sorted(set(skipped) - self._announced)
        if new:
            self._announced.update(new)
            warn(f'{len(skipped)} file(s) of the datasets skipped so far; '
                 f'new since the last epoch: {", ".join(new)}')

    def after_run(self, runner) -> None:
        gathered_skips(_merged(run_record().read()))
