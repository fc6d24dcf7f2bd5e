"""A detection visualizer whose drawings stay readable."""
from typing import List, Tuple

import numpy as np
import torch
from mmdet.structures.bbox import bbox_overlaps
from mmdet.visualization import DetLocalVisualizer
from mmengine.registry import VISUALIZERS

Rect = Tuple[float, float, float, float]  # x1, y1, x2, y2 in pixels
GAP = 1.  # pixels between two labels


def _overlaps(a: Rect, b: Rect) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def place_label(rect: Rect, width: float, height: float,
                taken: List[Rect]) -> Tuple[float, float]:
    """The shift (dx, dy) that moves a label's rectangle ``rect`` inside a
    ``width`` x ``height`` image and off the rectangles in ``taken``: first
    left/up into the image, then down (or, at the bottom, up) past each
    label it would cover, :data:`GAP` apart.

    Args:
        rect (tuple): The label's x1, y1, x2, y2 where it was drawn.
        width (float): Image width.
        height (float): Image height.
        taken (list[tuple]): Rectangles of the labels already placed.

    Returns:
        tuple: (dx, dy) in pixels.
    """
    x1, y1, x2, y2 = rect
    dx = min(0., width - x2) if x2 > width else max(0., -x1)
    dy = min(0., height - y2) if y2 > height else max(0., -y1)
    for _ in range(len(taken) + 1):
        moved = (x1 + dx, y1 + dy, x2 + dx, y2 + dy)
        hit = next((t for t in taken if _overlaps(moved, t)), None)
        if hit is None:
            break
        below = hit[3] - moved[1] + GAP
        if moved[3] + below <= height:
            dy += below
        else:
            dy -= moved[3] - hit[1] + GAP
        if y1 + dy < 0:
            dy = -y1
            break
    return dx, dy


def best_class_per_box(instances, same_iou: float = 0.99):
    """The predictions with each box kept once, under its best-scoring
    class.

    A detector with per-class scores (RetinaNet's sigmoid) and per-class
    NMS can return one box several times, once per class that scores
    above the threshold; drawn, they stack into one box with overprinted
    labels.

    Args:
        instances (InstanceData): Predictions with ``bboxes`` and
            ``scores``.
        same_iou (float): Boxes overlapping at least this much are the same
            box.

    Returns:
        InstanceData: The kept predictions, best score first.
    """
    order = torch.argsort(instances.scores, descending=True)
    instances = instances[order]
    overlaps = bbox_overlaps(instances.bboxes, instances.bboxes)
    keep = torch.ones(len(instances), dtype=torch.bool)
    for i in range(len(instances)):
        if keep[i]:
            later = torch.arange(len(instances)) > i
            keep &= ~(later & (overlaps[i] >= same_iou))
    return instances[keep]


@VISUALIZERS.register_module()
class ReadableDetVisualizer(DetLocalVisualizer):
    """mmdet's ``DetLocalVisualizer`` whose drawings stay readable: a box
    predicted under several classes is drawn once, with its best class
    (:func:`best_class_per_box`), and the labels stay inside the image and
    do not print over each other.

    mmdet writes each label ("circle: 97.3") rightwards from its box's
    top-left corner: near the right or bottom edge of the image the label
    is cut off, and the labels of close or repeated boxes overprint each
    other. Here each label, once drawn, is measured and moved into the
    image and off the labels already placed on the same image. Takes the
    same arguments as ``DetLocalVisualizer``, and:

    Args:
        same_iou (float): Predicted boxes overlapping at least this much
            are drawn as one, with the best class. The default takes only
            repeats of one box; where objects never overlap (the synthetic
            shapes), the NMS threshold (0.5) also merges the near-copies
            that different anchors give for different classes. Ground
            truth is drawn as it is.
    """

    def __init__(self,
                 name: str = 'visualizer',
                 same_iou: float = 0.99,
                 **kwargs) -> None:
        super().__init__(name=name, **kwargs)
        if not 0 < same_iou <= 1:
            raise ValueError(f'same_iou={same_iou!r} must be in (0, 1].')
        self.same_iou = same_iou

    def set_image(self, image: np.ndarray) -> None:
        """Start a drawing on ``image``, with no label placed yet."""
        super().set_image(image)
        self._labels: List[Rect] = []

    def add_datasample(self, name: str, image: np.ndarray,
                       data_sample=None, **kwargs) -> None:
        """mmdet's ``add_datasample``, with each predicted box drawn once,
        under its best class (:func:`best_class_per_box`). Takes the same
        arguments."""
        predicted = getattr(data_sample, 'pred_instances', None)
        if predicted is not None and 'scores' in predicted and \
                'bboxes' in predicted and len(predicted):
            data_sample = data_sample.clone()
            data_sample.pred_instances = best_class_per_box(
                predicted, self.same_iou)
        super().add_datasample(name, image, data_sample, **kwargs)

    def draw_texts(self, texts, positions, *args, **kwargs):
        super().draw_texts(texts, positions, *args, **kwargs)
        if not isinstance(texts, str):
            return self
        text = self.ax_save.texts[-1]
        renderer = self.fig_save.canvas.get_renderer()
        text.update_bbox_position_size(renderer)
        patch = text.get_bbox_patch()
        extent = (patch.get_window_extent(renderer)
                  if patch is not None else text.get_window_extent(renderer))
        corners = self.ax_save.transData.inverted().transform(
            extent.get_points())
        rect = (corners[:, 0].min(), corners[:, 1].min(),
                corners[:, 0].max(), corners[:, 1].max())
        dx, dy = place_label(rect, self.width, self.height, self._labels)
        x, y = text.get_position()
        text.set_position((x + dx, y + dy))
        self._labels.append(
            (rect[0] + dx, rect[1] + dy, rect[2] + dx, rect[3] + dy))
        return self
