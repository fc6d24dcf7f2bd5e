"""The label map of a semantic segmentor from its low-resolution class
logits: exactly mmseg's bilinear resize to the input size followed by the
argmax over the classes (``resize(...).argmax(1)``), without resizing all
the logits.

Each output pixel is a convex combination (bilinear weights) of the logits
at the four low-resolution corners of its cell. Where one class is the
argmax at all four corners it is the argmax of every blend inside the cell,
so the cell takes that label. Elsewhere (cells on a class boundary) only the
classes whose largest corner value reaches the best smallest corner value
can win, and only those are blended, with torch's weights. The labels equal
mmseg's except where two classes tie within float rounding.

When most cells are boundary cells with many candidate classes (noise-like
logits), pruning saves nothing; the caller's dense tail (the backend's
resize + argmax graph, :func:`tail_graph`) runs instead.
"""
import os.path as osp
import tempfile
from typing import Callable, Optional, Sequence, Tuple

import numpy as np

from .constants import BACKENDS

# The sparse path runs when the blends it computes (pixels x candidates)
# are at most this fraction of the dense tail's (pixels x classes).
SPARSE_WORK_LIMIT = 0.1
# Above this fraction of boundary cells, the dense tail runs at once.
BOUNDARY_LIMIT = 0.5


def bilinear_sources(out_size: int, in_size: int, align_corners: bool
                     ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Torch's bilinear source of each output index along one axis (as
    ``F.interpolate(..., size=...)`` computes it, in float32).

    Args:
        out_size (int): Output length.
        in_size (int): Input length.
        align_corners (bool): Torch's ``align_corners``.

    Returns:
        tuple[ndarray, ndarray, ndarray]: the lower source index, the upper
        one (the same at the last input index) and the weight of the upper.
    """
    dst = np.arange(out_size, dtype=np.float32)
    if align_corners:
        scale = np.float32((in_size - 1) / (out_size - 1)) \
            if out_size > 1 else np.float32(0)
        src = scale * dst
    else:
        scale = np.float32(in_size / out_size)
        src = np.maximum(scale * (dst + np.float32(0.5)) - np.float32(0.5),
                         np.float32(0))
    low = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
    weight = np.clip(src - low.astype(np.float32), 0, 1).astype(np.float32)
    high = np.minimum(low + 1, in_size - 1)
    return low, high, weight


def _uniform_cells(labels: np.ndarray) -> np.ndarray:
    """Whether each low-resolution cell (corner at ``(i, j)``, the others at
    ``i + 1`` and ``j + 1`` clamped) has the same argmax at its corners."""
    down = np.concatenate([labels[1:], labels[-1:]], axis=0)
    right = np.concatenate([labels[:, 1:], labels[:, -1:]], axis=1)
    diagonal = np.concatenate([down[:, 1:], down[:, -1:]], axis=1)
    return (labels == down) & (labels == right) & (labels == diagonal)


class CellSplit:
    """One image's low-resolution argmax, its boundary cells (corners with
    different argmaxes) and, in them, the classes that can win.

    In a boundary cell, the best of the corners' own classes at each pixel
    is a lower bound of the pixel's maximum (:meth:`blend_own_classes`); a
    class whose largest corner value stays below the smallest such bound
    over the cell's pixels loses at every pixel of the cell. The others
    are the cell's candidates, blended by :meth:`label_map`.

    Args:
        logits (ndarray): ``(C, h, w)`` float32 class logits.
        size (tuple[int, int]): ``(H, W)`` of the label map.
        align_corners (bool): The decode head's ``align_corners``.
    """

    def __init__(self, logits: np.ndarray, size: Sequence[int],
                 align_corners: bool) -> None:
        self.logits = logits
        height, width = logits.shape[1:]
        self.rows = bilinear_sources(int(size[0]), height, align_corners)
        self.cols = bilinear_sources(int(size[1]), width, align_corners)
        coarse = _argmax_classes(logits)
        self.coarse = coarse
        # Only the cells that pixels fall in.
        used_rows, used_cols = np.unique(self.rows[0]), np.unique(self.cols[0])
        boundary = np.zeros_like(coarse, dtype=bool)
        boundary[np.ix_(used_rows, used_cols)] = ~_uniform_cells(coarse)[
            np.ix_(used_rows, used_cols)]
        self.boundary_fraction = float(
            boundary.sum() / (len(used_rows) * len(used_cols)))
        self.boundary = boundary
        self.cells = np.flatnonzero(boundary)
        self.open_cells = np.zeros(0, np.int64)

    def blend_own_classes(self) -> None:
        """Label every pixel with its cell's corner argmax; blend the
        corners' own classes at the pixels of the boundary cells, and find
        the classes that can beat them there."""
        self.labels = np.take(np.take(self.coarse, self.rows[0], 0),
                              self.cols[0], 1)
        if not len(self.cells):
            return
        self.ys, self.xs = np.nonzero(np.take(
            np.take(self.boundary, self.rows[0], 0), self.cols[0], 1))
        classes = self.logits.shape[0]
        height, width = self.coarse.shape
        i, j = np.divmod(self.cells, width)
        i1, j1 = np.minimum(i + 1, height - 1), np.minimum(j + 1, width - 1)
        # In the order of torch's blend: (i, j), (i, j1), (i1, j), (i1, j1).
        corner_index = np.stack([i * width + j, i * width + j1,
                                 i1 * width + j, i1 * width + j1], axis=1)
        # (cells, 4 corners, classes)
        self.corners = self.logits.reshape(classes, -1)[:, corner_index]\
            .transpose(1, 2, 0)
        local = np.full(self.coarse.size, -1, np.int64)
        local[self.cells] = np.arange(len(self.cells))
        self.pixel_cell = local[self.rows[0][self.ys] * width +
                                self.cols[0][self.xs]]
        self.wy = self.rows[2][self.ys][:, None]
        self.wx = self.cols[2][self.xs][:, None]
        # The corners' own classes, ascending: of equal blends the first,
        # the lowest class, wins, as in torch's argmax.
        own = np.sort(self.coarse.ravel()[corner_index], axis=1)
        best = self._blend(np.arange(len(self.cells)), own)
        bound = np.full(len(self.cells), np.inf, np.float32)
        np.minimum.at(bound, self.pixel_cell, best)
        self.candidates = self.corners.max(1) >= bound[:, None]
        self.candidates[np.arange(len(own))[:, None], own] = True
        distinct = 1 + (np.diff(own, axis=1) != 0).sum(1)
        self.counts = self.candidates.sum(1)
        # Cells where classes other than the corners' own may win.
        self.open_cells = np.flatnonzero(self.counts > distinct)

    def _blend(self, cells: np.ndarray, classes: np.ndarray) -> np.ndarray:
        """Blend ``classes`` (``(len(cells), K)``) at the pixels of
        ``cells`` (indices into :attr:`cells`) with torch's weights, write
        the best class into :attr:`labels` and return the best blends."""
        values = np.take_along_axis(self.corners[cells], classes[:, None, :],
                                    axis=2)
        if len(cells) == len(self.cells):
            pick, index = slice(None), self.pixel_cell
        else:
            in_cells = np.full(len(self.cells), -1, np.int64)
            in_cells[cells] = np.arange(len(cells))
            mine = in_cells[self.pixel_cell]
            pick = np.flatnonzero(mine >= 0)
            index = mine[pick]
        v = values[index]
        y, x = self.wy[pick], self.wx[pick]
        blend = (1 - y) * ((1 - x) * v[:, 0] + x * v[:, 1]) + \
            y * ((1 - x) * v[:, 2] + x * v[:, 3])
        best, arg = _first_max(blend)
        self.labels[self.ys[pick], self.xs[pick]] = classes[index, arg]
        return best

    def open_work(self) -> int:
        """Blends the second pass of :meth:`label_map` computes: the pixels
        of the cells with candidates beyond the corners' own classes, times
        the candidates (as bucketed)."""
        if not len(self.open_cells):
            return 0
        pixels = np.bincount(self.pixel_cell, minlength=len(self.cells))
        return int((pixels[self.open_cells] *
                    _bucket(self.counts[self.open_cells])).sum())

    def label_map(self) -> np.ndarray:
        """The ``(H, W)`` int64 label map (after
        :meth:`blend_own_classes`)."""
        buckets = _bucket(self.counts[self.open_cells]) \
            if len(self.open_cells) else np.zeros(0, np.int64)
        for size in np.unique(buckets):
            cells = self.open_cells[buckets == size]
            # Candidates first in class order, then others (which cannot
            # win) as padding.
            order = np.argsort(~self.candidates[cells], axis=1,
                               kind='stable')[:, :size]
            self._blend(cells, order)
        return self.labels


def _argmax_classes(logits: np.ndarray) -> np.ndarray:
    """``logits.argmax(0)`` of ``(C, h, w)`` logits, class by class (numpy's
    argmax over the first axis is several times slower)."""
    best = logits[0].copy()
    arg = np.zeros(best.shape, np.int64)
    for cls in range(1, len(logits)):
        better = logits[cls] > best
        np.copyto(best, logits[cls], where=better)
        arg[better] = cls
    return arg


def _first_max(values: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """The maximum of each row of ``(P, K)`` values and its first index."""
    if values.shape[1] > 8:
        arg = values.argmax(1)
        return np.take_along_axis(values, arg[:, None], 1)[:, 0], arg
    best = values[:, 0].copy()
    arg = np.zeros(len(values), np.int64)
    for k in range(1, values.shape[1]):
        better = values[:, k] > best
        best[better] = values[better, k]
        arg[better] = k
    return best, arg


def _bucket(counts: np.ndarray) -> np.ndarray:
    """Candidate counts rounded up to a power of two: cells are blended in
    groups of one padded width."""
    return 1 << np.ceil(np.log2(np.maximum(counts, 1))).astype(np.int64)


def label_maps(logits: np.ndarray,
               size: Sequence[int],
               align_corners: bool,
               dense: Optional[Callable[[np.ndarray, Sequence[int]],
                                        np.ndarray]] = None,
               work_limit: float = SPARSE_WORK_LIMIT) -> np.ndarray:
    """mmseg's label maps (bilinear resize to ``size``, argmax over the
    classes) of a batch of low-resolution logits.

    Args:
        logits (ndarray): ``(N, C, h, w)`` class logits, C >= 2.
        size (tuple[int, int]): ``(H, W)``: the segmentor's input size.
        align_corners (bool): The decode head's ``align_corners``.
        dense (callable, optional): ``dense(logits, size)`` for one image's
            ``(1, C, h, w)`` logits: its ``(1, 1, H, W)`` label map by the
            full resize + argmax, run where pruning saves too little.
            Defaults to pruning always.
        work_limit (float): Pruning runs when its blends are at most this
            fraction of the full resize's.

    Returns:
        ndarray: ``(N, 1, H, W)`` int64 labels.
    """
    if logits.ndim != 4 or logits.shape[1] < 2:
        raise ValueError('logits must be (N, C, h, w) with C >= 2 classes, '
                         f'got shape {tuple(logits.shape)}')
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f'size must be (H, W) >= 1, got {tuple(size)}')
    logits = np.ascontiguousarray(logits, dtype=np.float32)
    size = tuple(int(side) for side in size)
    maps = np.empty((len(logits), 1, *size), np.int64)
    for one, out in zip(logits, maps[:, 0]):
        split = CellSplit(one, size, align_corners)
        full = size[0] * size[1] * one.shape[0]
        if dense is not None and split.boundary_fraction > BOUNDARY_LIMIT:
            out[...] = dense(one[None], size)[0, 0]
            continue
        split.blend_own_classes()
        if dense is not None and split.open_work() > work_limit * full:
            out[...] = dense(one[None], size)[0, 0]
        else:
            out[...] = split.label_map()
    return maps


def tail_graph(align_corners: bool, opset: int = 13) -> bytes:
    """The tail every mmdeploy segmentation graph ends in, as its own ONNX
    graph: ``logits`` ``(N, C, h, w)`` float and ``size`` ``(4,)`` int64
    (``N, C, H, W``) in, the ``(N, 1, H, W)`` int64 label map out.

    Args:
        align_corners (bool): The decode head's ``align_corners``.
        opset (int): ONNX opset (>= 11).
    """
    import onnx.helper as helper
    from onnx import TensorProto
    mode = 'align_corners' if align_corners else 'pytorch_half_pixel'
    nodes = [
        helper.make_node('Resize', ['logits', 'roi', 'scales', 'size'],
                         ['resized'], mode='linear',
                         coordinate_transformation_mode=mode),
        helper.make_node('ArgMax', ['resized'], ['labels'], axis=1,
                         keepdims=1)
    ]
    graph = helper.make_graph(
        nodes, 'label_map_tail', [
            helper.make_tensor_value_info(
                'logits', TensorProto.FLOAT, ['n', 'c', 'h', 'w']),
            helper.make_tensor_value_info('size', TensorProto.INT64, [4])
        ], [helper.make_tensor_value_info('labels', TensorProto.INT64, None)],
        initializer=[
            helper.make_tensor('roi', TensorProto.FLOAT, [0], []),
            helper.make_tensor('scales', TensorProto.FLOAT, [0], []),
        ])
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid('', opset)])
    model.ir_version = 8
    return model.SerializeToString()


class LabelMapTail:
    """Label maps of a deployed segmentor whose graph outputs its logits
    at the head's resolution: :func:`label_maps`, with the full resize +
    argmax (:func:`tail_graph`) in the deployment's backend where pruning
    saves too little.

    Args:
        backend (str): ``'onnxruntime'`` or ``'openvino'``.
        align_corners (bool): The decode head's ``align_corners``.
        threads (int): Threads of the backend session; 0 lets the backend
            choose.
    """

    def __init__(self, backend: str, align_corners: bool,
                 threads: int = 0) -> None:
        if backend not in BACKENDS:
            raise ValueError(f'backend {backend!r}: allowed are '
                             f'{", ".join(BACKENDS)}.')
        self.align_corners = align_corners
        graph = tail_graph(align_corners)
        if backend == 'onnxruntime':
            from .runtimes import ort_session
            session = ort_session(graph, threads)
            self._run = lambda feed: session.run(None, feed)[0]
        else:
            import openvino
            with tempfile.TemporaryDirectory() as folder:
                path = osp.join(folder, 'tail.onnx')
                with open(path, 'wb') as file:
                    file.write(graph)
                config = {'INFERENCE_PRECISION_HINT': 'f32'}
                if threads:
                    config['INFERENCE_NUM_THREADS'] = threads
                compiled = openvino.Core().compile_model(path, 'CPU', config)
            request = compiled.create_infer_request()
            self._run = lambda feed: next(iter(request.infer(feed).values()))

    def dense(self, logits: np.ndarray, size: Sequence[int]) -> np.ndarray:
        """The full resize + argmax of ``(N, C, h, w)`` logits in the
        backend: ``(N, 1, H, W)`` int64 labels."""
        shape = np.array([*logits.shape[:2], *size], np.int64)
        return self._run(dict(logits=logits, size=shape))

    def __call__(self, logits: np.ndarray, size: Sequence[int]) -> np.ndarray:
        """``(N, 1, H, W)`` int64 label maps of ``(N, C, h, w)`` logits
        at the input size ``(H, W)``."""
        return label_maps(logits, size, self.align_corners, self.dense)
