"""Timing the tail of a deployed segmentor, the label map drawn from its
class logits: mmdeploy's resize + argmax graph in the backend (the tail a
graph with the label map in it ends in) beside
:class:`evit_mm.deploy.label_map.LabelMapTail` (the exact pruned tail of
a graph that outputs the head's logits), on logits like a trained
segmentor's and on noise."""
from typing import Dict, List, Sequence, Tuple, Union

import numpy as np

# Realistic logits: the region's class leads the others (unit Gaussian
# noise) by this much.
MARGIN = 6.


def realistic_logits(label_map: np.ndarray, seed: int, classes: int,
                     logit_size: Union[int, Tuple[int, int]],
                     margin: float = MARGIN) -> np.ndarray:
    """``(1, classes, h, w)`` float32 logits like a trained segmentor's:
    unit Gaussian noise, plus ``margin`` times the share of each
    low-resolution pixel that a region of ``label_map`` covers, for a class
    drawn at random among ``classes`` per region.

    Args:
        label_map (ndarray): ``(H, W)`` integer regions, e.g. a synthetic
            ADE20K-layout scene's
            (:func:`evit_mm.datasets.synthetic.scene_label_map`).
        seed (int): Seed of the classes and the noise.
        classes (int): Number of classes (>= the regions).
        logit_size (int | tuple[int, int]): Side, or (h, w), of the
            logits.
        margin (float): Lead of a region's class.
    """
    import cv2
    height, width = (logit_size, logit_size) if isinstance(
        logit_size, int) else logit_size
    rng = np.random.default_rng(seed)
    present = np.unique(label_map)
    logits = rng.standard_normal((classes, height, width), dtype=np.float32)
    for value, cls in zip(present,
                          rng.choice(classes, len(present), replace=False)):
        share = cv2.resize((label_map == value).astype(np.float32),
                           (width, height), interpolation=cv2.INTER_AREA)
        logits[cls] += margin * share
    return logits[None]


def random_logits(seed: int, classes: int, logit_size: int) -> np.ndarray:
    """Independent unit Gaussian ``(1, classes, logit_size, logit_size)``
    logits: class boundaries in nearly every cell, the pruned tail's worst
    case."""
    return np.random.default_rng(seed).standard_normal(
        (1, classes, logit_size, logit_size), dtype=np.float32)


def time_tails(logits: Dict[str, np.ndarray], size: Sequence[int],
               threads: int, repeats: int,
               backends: Sequence[str]) -> List[dict]:
    """Time the old tail (resize + argmax graph) and the new one
    (:class:`~evit_mm.deploy.label_map.LabelMapTail`) of each backend on
    each kind of logits, interleaved in one run per kind.

    Args:
        logits (dict): Kind (e.g. ``'realistic'``) to ``(1, C, h, w)``
            logits.
        size (tuple[int, int]): ``(H, W)`` of the label map.
        threads (int): Threads of the backend sessions.
        repeats (int): Timed rounds (after one untimed).
        backends (Sequence[str]): Of ``'onnxruntime'``, ``'openvino'``.

    Returns:
        list[dict]: per kind and backend: ``kind``, ``backend``,
        ``boundary`` (the fraction of boundary cells), ``old`` and ``new``
        (:func:`~evit_mm.analysis.timing.summary` of each tail), and
        ``agree`` (whether the two label maps are equal).
    """
    from ..deploy.label_map import CellSplit, LabelMapTail
    from .timing import interleaved, summary
    tails = {backend: LabelMapTail(backend, False, threads)
             for backend in backends}
    rows = []
    for kind, one in logits.items():
        fns = {}
        for backend, tail in tails.items():
            fns[backend, 'old'] = lambda t=tail, x=one: t.dense(x, size)
            fns[backend, 'new'] = lambda t=tail, x=one: t(x, size)
        times = interleaved(fns, warmup=1, repeats=repeats)
        boundary = CellSplit(one[0], size, False).boundary_fraction
        for backend, tail in tails.items():
            rows.append(dict(
                kind=kind, backend=backend, boundary=boundary,
                old=summary(times[backend, 'old']),
                new=summary(times[backend, 'new']),
                agree=bool((tail.dense(one, size) == tail(one, size)).all())))
    return rows


def tail_line(row: dict) -> str:
    """One printed line of a :func:`time_tails` row."""
    old, new = row['old'], row['new']
    speedup = old['median_ms'] / new['median_ms']
    return (f'{row["kind"]:<10} {row["backend"]:<12} boundary cells '
            f'{row["boundary"]:6.1%}  old {old["median_ms"]:7.1f} ms '
            f'({old["p10_ms"]:.1f}-{old["p90_ms"]:.1f})  new '
            f'{new["median_ms"]:7.1f} ms ({new["p10_ms"]:.1f}-'
            f'{new["p90_ms"]:.1f})  {speedup:5.1f}x  '
            f'{"same labels" if row["agree"] else "LABELS DIFFER"}')
