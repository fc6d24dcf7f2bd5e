"""The detection drawings: a box predicted for several classes drawn once,
and every label inside the image and apart from the others, where mmdet's
own visualizer repeats, cuts off or overprints them; read back from the
drawn figure."""
import numpy as np
import pytest
import torch

pytest.importorskip('mmdet')

from mmdet.structures import DetDataSample  # noqa: E402
from mmdet.visualization import DetLocalVisualizer  # noqa: E402
from mmengine.structures import InstanceData  # noqa: E402

from evit_mm.visualization.det_visualizer import (  # noqa: E402
    ReadableDetVisualizer, best_class_per_box, place_label)

CLASSES = ('circle', 'square', 'triangle')
# Boxes of a 192 x 192 image: at the right edge, at the bottom-right
# corner, and two neighbours whose labels would print over each other.
BOXES = [[150, 20, 190, 60], [160, 160, 191, 191], [20, 100, 70, 150],
         [22, 104, 72, 154]]


def _label_rects(visualizer):
    renderer = visualizer.fig_save.canvas.get_renderer()
    rects = []
    for text in visualizer.ax_save.texts:
        text.update_bbox_position_size(renderer)
        extent = text.get_bbox_patch().get_window_extent(renderer)
        corners = visualizer.ax_save.transData.inverted().transform(
            extent.get_points())
        rects.append((corners[:, 0].min(), corners[:, 1].min(),
                      corners[:, 0].max(), corners[:, 1].max()))
    return rects


def _draw(visualizer_type, boxes=BOXES, labels=(0, 1, 2, 0),
          scores=(0.973, 0.881, 0.544, 0.612)):
    """The rectangles and texts of the labels the visualizer draws for
    these predictions through ``add_datasample``, and the drawing."""
    visualizer = visualizer_type(
        name=f'vis_{visualizer_type.__name__}_{len(boxes)}_{scores[0]}')
    visualizer.dataset_meta = dict(
        classes=CLASSES, palette=[(220, 20, 60), (0, 130, 230),
                                  (250, 170, 30)])
    sample = DetDataSample(pred_instances=InstanceData(
        bboxes=torch.tensor(boxes, dtype=torch.float32),
        labels=torch.tensor(labels), scores=torch.tensor(scores)))
    # add_datasample ends by setting its drawing as the image, which clears
    # the figure: read the labels just before that
    drawn = []
    set_image = visualizer.set_image

    def read_labels_then_set(image):
        drawn.append((_label_rects(visualizer),
                      [t.get_text() for t in visualizer.ax_save.texts]))
        set_image(image)

    visualizer.set_image = read_labels_then_set
    visualizer.add_datasample('sample', np.full((192, 192, 3), 90, np.uint8),
                              sample, draw_gt=False, pred_score_thr=0.)
    rects, texts = drawn[-1]
    return rects, visualizer.get_image(), texts


def _inside(rect, size=192):
    return rect[0] >= 0 and rect[1] >= 0 and rect[2] <= size and \
        rect[3] <= size


def _apart(rects):
    return all(a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1]
               for i, a in enumerate(rects) for b in rects[i + 1:])


def test_labels_inside_and_apart():
    stock, _, _ = _draw(DetLocalVisualizer)
    assert len(stock) == len(BOXES)
    assert not all(map(_inside, stock)) and not _apart(stock)
    readable, drawing, _ = _draw(ReadableDetVisualizer)
    assert drawing.shape == (192, 192, 3)
    assert len(readable) == len(BOXES)
    assert all(map(_inside, readable)), readable
    assert _apart(readable), readable


def test_a_box_of_several_classes_is_drawn_once():
    """RetinaNet returns one box once per class scoring above the
    threshold (sigmoid scores, NMS per class)."""
    box = [60, 60, 120, 120]
    case = dict(boxes=[box, box, [10, 10, 40, 40], box],
                labels=(1, 0, 2, 2), scores=(0.587, 0.595, 0.475, 0.457))
    _, _, stock = _draw(DetLocalVisualizer, **case)
    assert len(stock) == 4
    _, _, readable = _draw(ReadableDetVisualizer, **case)
    assert sorted(readable) == ['circle: 59.5', 'triangle: 47.5']
    kept = best_class_per_box(InstanceData(
        bboxes=torch.tensor(case['boxes'], dtype=torch.float32),
        labels=torch.tensor(case['labels']),
        scores=torch.tensor(case['scores'])))
    assert kept.labels.tolist() == [0, 2]
    # near-copies (different anchors) merge at the NMS threshold only
    near = InstanceData(bboxes=torch.tensor([[60., 60, 120, 120],
                                             [62., 60, 122, 124]]),
                        labels=torch.tensor([0, 1]),
                        scores=torch.tensor([0.4, 0.6]))
    assert len(best_class_per_box(near)) == 2
    assert best_class_per_box(near, 0.5).labels.tolist() == [1]
    with pytest.raises(ValueError, match='same_iou=0'):
        ReadableDetVisualizer(name='bad_same_iou', same_iou=0)


def test_place_label():
    assert place_label((180, 10, 220, 20), 192, 192, []) == (-28, 0)
    assert place_label((10, 185, 40, 195), 192, 192, []) == (0, -3)
    assert place_label((10, 10, 40, 20), 192, 192,
                       [(0, 5, 50, 15)]) == (0, 6)
    # at the bottom, the label goes above the one it would cover
    assert place_label((10, 180, 40, 190), 192, 192,
                       [(0, 182, 50, 192)]) == (0, -9)
