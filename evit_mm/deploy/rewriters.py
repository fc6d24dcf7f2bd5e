"""mmdeploy rewriters that keep evit_mm's whole models correct at every
input size of a dynamic graph.

Two operations are traced at the example's size and would be wrong at any
other; here, for ONNX Runtime and OpenVINO, they follow the input's size:

* mmdeploy 1.3.1 exports ``adaptive_avg_pool2d`` (UperNet's pyramid
  pooling, scales 1, 2, 3, 6) as an ``avg_pool2d`` whose kernel is computed
  from the traced size (and the export fails where a map is smaller than
  the pooled size);
* mmseg's ``Upsample`` (Semantic FPN's head) turns its output size into
  Python ints, which the tracer records as constants.

A detector's graph takes the image unpadded and pads it itself
(:func:`detector__extract_feat_padded`): mmdeploy gives the heads the
input's size as the image's, and mmdet clips boxes to the image before
padding, so a graph fed padded images clipped boxes to the padding.

RTMDet's and RTMDet-Ins's NMS, as mmdeploy 1.3.1 exports them, ran on
boxes not clipped to the image (mmdet clips them first)
(:func:`rtmdet_head__predict_by_feat_clipped`,
:func:`rtmdet_ins_head__predict_by_feat_clipped`).

A segmentor's graph may end at its head's logits
(:func:`decode_head__predict_by_feat_at_head_size`).
"""
from typing import Callable, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmdeploy.codebase.mmdet.deploy import (clip_bboxes,
                                             get_post_processing_params)
from mmdeploy.codebase.mmdet.models.dense_heads.rtmdet_ins_head import \
    _nms_with_mask_static
from mmdeploy.core import FUNCTION_REWRITER
from mmdeploy.mmcv.ops import multiclass_nms
from mmdet.structures.bbox import distance2bbox
from torch.nn.modules.utils import _pair

from .constants import BACKENDS, GRAPH_PADDING, RESIZE_LOGITS

# mmdeploy imports the target of every registered rewriter when an export
# starts, inside its RewriterContext. Importing mmseg there (it imports timm,
# whose modules call torch.fx.wrap) lengthens torch.fx's table of wrapped
# functions, and on leaving the context mmdeploy 1.3.1 shortens that table
# with list.pop(-1), which torch 2.14's dict refuses (KeyError: -1): every
# export in a process that had not imported mmseg yet (a detector or a
# classifier deployed by tools/deployment/deploy.py) failed at its end.
# Importing the target with the rewriter keeps the table's length constant.
try:
    import mmseg.models.utils  # noqa: F401
except ImportError:  # no mmseg: the rewriter has nothing to rewrite
    pass


def rewriter_of_deployed(func_name: str) -> Callable:
    """Register the decorated function as mmdeploy's rewriter of
    ``func_name`` for every backend of :data:`BACKENDS` (ONNX Runtime and
    OpenVINO), in place of mmdeploy's default one."""

    def register(rewriter: Callable) -> Callable:
        for backend in BACKENDS:
            rewriter = FUNCTION_REWRITER.register_rewriter(
                func_name=func_name, backend=backend)(rewriter)
        return rewriter

    return register


def adaptive_avg_pool2d_any_size(
        x: torch.Tensor,
        output_size: Union[int, Sequence[int]]) -> torch.Tensor:
    """``F.adaptive_avg_pool2d`` from an integral image: bin ``i`` of ``s``
    over ``n`` pixels spans ``[floor(i n / s), ceil((i + 1) n / s))``, with
    the sizes read from the input (traced as ``Shape``), so that an exported
    graph is right at any height and width.

    Args:
        x (Tensor): ``(N, C, H, W)``.
        output_size (int | Sequence[int]): Output height and width.
    """
    out_h, out_w = _pair(output_size)
    shape = torch._shape_as_tensor(x)
    integral = F.pad(x.cumsum(2).cumsum(3), (1, 0, 1, 0))

    def bounds(size: torch.Tensor, bins: int):
        index = torch.arange(bins)
        return (index * size) // bins, ((index + 1) * size + bins - 1) // bins

    top, bottom = bounds(shape[2], out_h)
    left, right = bounds(shape[3], out_w)

    def corner(rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        return integral.index_select(2, rows).index_select(3, cols)

    total = (corner(bottom, right) - corner(top, right) -
             corner(bottom, left) + corner(top, left))
    area = (bottom - top)[:, None] * (right - left)[None]
    return total / area.to(x.dtype)


@rewriter_of_deployed('torch.nn.functional.adaptive_avg_pool2d')
def adaptive_avg_pool2d__any_size(input: torch.Tensor, output_size):
    """Global pooling as exported by torch; other sizes by
    :func:`adaptive_avg_pool2d_any_size`."""
    ctx = FUNCTION_REWRITER.get_context()
    if _pair(output_size) == (1, 1):
        return ctx.origin_func(input, output_size)
    return adaptive_avg_pool2d_any_size(input, output_size)


@rewriter_of_deployed('mmseg.models.utils.Upsample.forward')
def upsample__any_size(self, x: torch.Tensor) -> torch.Tensor:
    """Upsample by the scale factor itself (exported as a ``Resize`` with
    scales), not by a size computed in Python; a fixed ``size`` stays."""
    ctx = FUNCTION_REWRITER.get_context()
    if self.size:
        return ctx.origin_func(self, x)
    return F.interpolate(x, scale_factor=self.scale_factor, mode=self.mode,
                         align_corners=self.align_corners)


def pad_to_multiple(x: torch.Tensor, divisor: int,
                    value: float = 0.) -> torch.Tensor:
    """Pad ``x`` with ``value`` at the bottom and right to a multiple of
    ``divisor`` in height and width, the padding computed from the input's
    shape (traced as ``Shape``), as mmdet's ``stack_batch`` pads a
    normalised batch.

    Args:
        x (Tensor): ``(N, C, H, W)``.
        divisor (int): The multiple.
        value (float): The padding's value.
    """
    if divisor <= 1:
        return x
    size = torch._shape_as_tensor(x)[2:]
    missing = (divisor - size % divisor) % divisor
    return F.pad(x, (0, missing[1], 0, missing[0]), value=value)


@rewriter_of_deployed(
    'mmdet.models.detectors.single_stage.SingleStageDetector.extract_feat')
@rewriter_of_deployed(
    'mmdet.models.detectors.two_stage.TwoStageDetector.extract_feat')
def detector__extract_feat_padded(self, batch_inputs: torch.Tensor):
    """The features of the input padded as the deploy config's
    :data:`GRAPH_PADDING` says. The graph's input is then the image
    itself, whose size mmdeploy passes to the heads as the image's: boxes
    are clipped to the image, as in mmdet, not to the padding. (For
    two-stage detectors this replaces mmdeploy's rewriter, which only
    marks the features for partitioned graphs.)"""
    ctx = FUNCTION_REWRITER.get_context()
    padding = ctx.cfg.codebase_config.get(GRAPH_PADDING)
    if padding is not None:
        batch_inputs = pad_to_multiple(batch_inputs, padding['size_divisor'],
                                       padding['value'])
    return ctx.origin_func(self, batch_inputs)


@FUNCTION_REWRITER.register_rewriter(
    func_name='mmdet.models.task_modules.prior_generators.'
    'MlvlPointGenerator.single_level_grid_priors')
def single_level_grid_priors__default_device(self,
                                              featmap_size,
                                              level_idx: int,
                                              dtype=torch.float32,
                                              device='cuda',
                                              with_stride: bool = False):
    """mmdeploy's RTMDet-Ins mask decoding calls this with mmdet's default
    ``device='cuda'``: on a machine without a GPU the points are made on
    the CPU instead."""
    ctx = FUNCTION_REWRITER.get_context()
    if str(device).startswith('cuda') and not torch.cuda.is_available():
        device = 'cpu'
    return ctx.origin_func(self, featmap_size, level_idx, dtype, device,
                           with_stride)


def _flatten_levels(maps: Sequence[torch.Tensor],
                    channels: int) -> torch.Tensor:
    """``(N, channels * A, H, W)`` maps of every level as one
    ``(N, sum(H * W * A), channels)`` tensor, in the priors' order."""
    return torch.cat([
        level.permute(0, 2, 3, 1).reshape(level.shape[0], -1, channels)
        for level in maps
    ], 1)


def rtmdet_boxes_in_image(
        head, cls_scores: Sequence[torch.Tensor],
        bbox_preds: Sequence[torch.Tensor],
        img_shape) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """An RTMDet head's priors (with strides), boxes clipped to the image
    and class scores, every level flattened, as mmdet's ``predict_by_feat``
    decodes them before NMS.

    Args:
        head: An ``RTMDetHead`` or ``RTMDetInsHead``.
        cls_scores (list[Tensor]): Class logits per level.
        bbox_preds (list[Tensor]): Box distances (pixels) per level.
        img_shape: ``(H, W)`` of the image, the graph's input
            (:func:`detector__extract_feat_padded`).

    Returns:
        tuple[Tensor]: priors ``(P, 4)``, boxes ``(N, P, 4)``, scores
        ``(N, P, num_classes)``.
    """
    priors = torch.cat(head.prior_generator.grid_priors(
        [level.shape[2:] for level in cls_scores],
        device=cls_scores[0].device, with_stride=True))
    bboxes = distance2bbox(priors[:, :2], _flatten_levels(bbox_preds, 4))
    bboxes = torch.stack(clip_bboxes(*bboxes.unbind(-1), img_shape), -1)
    scores = _flatten_levels(cls_scores, head.cls_out_channels).sigmoid()
    return priors, bboxes, scores


@rewriter_of_deployed(
    'mmdet.models.dense_heads.rtmdet_head.RTMDetHead.predict_by_feat')
def rtmdet_head__predict_by_feat_clipped(
        self,
        cls_scores: List[torch.Tensor],
        bbox_preds: List[torch.Tensor],
        batch_img_metas: Optional[List[dict]] = None,
        cfg=None,
        rescale: bool = False,
        with_nms: bool = True):
    """RTMDet's boxes, scores and labels after NMS, as mmdeploy's rewriter
    computes them but with the boxes clipped to the image before NMS, as
    mmdet clips them: mmdeploy 1.3.1 does not clip them, so boxes reached
    out of the image (x = -24) and NMS compared other overlaps than
    mmdet's.

    Args:
        cls_scores, bbox_preds (list[Tensor]): The head's maps per level:
            class logits and box distances (pixels).
        batch_img_metas (list[dict]): ``img_shape``, the graph's input size.
        cfg (ConfigDict, optional): Test config; the head's by default.
        with_nms (bool): Whether NMS is applied; without it, the clipped
            boxes and the scores of every prior are returned.
        rescale: Unused, as in mmdeploy (boxes in the input's frame).
    """
    ctx = FUNCTION_REWRITER.get_context()
    cfg = self.test_cfg if cfg is None else cfg
    _, bboxes, scores = rtmdet_boxes_in_image(
        self, cls_scores, bbox_preds, batch_img_metas[0]['img_shape'])
    if not with_nms:
        return bboxes, scores
    post = get_post_processing_params(ctx.cfg)
    return multiclass_nms(
        bboxes, scores, post.max_output_boxes_per_class,
        nms_type=cfg.nms.get('type'),
        iou_threshold=cfg.nms.get('iou_threshold', post.iou_threshold),
        score_threshold=cfg.get('score_thr', post.score_threshold),
        pre_top_k=post.pre_top_k,
        keep_top_k=cfg.get('max_per_img', post.keep_top_k))


@rewriter_of_deployed(
    'mmdet.models.dense_heads.rtmdet_ins_head.RTMDetInsHead.predict_by_feat')
def rtmdet_ins_head__predict_by_feat_clipped(
        self,
        cls_scores: List[torch.Tensor],
        bbox_preds: List[torch.Tensor],
        kernel_preds: List[torch.Tensor],
        mask_feat: torch.Tensor,
        score_factors=None,
        batch_img_metas: Optional[List[dict]] = None,
        cfg=None,
        rescale: bool = False,
        with_nms: bool = True):
    """RTMDet-Ins's boxes, scores, labels and masks after NMS, as
    mmdeploy's rewriter computes them but with the boxes clipped to the
    image before NMS, as mmdet clips them (mmdeploy 1.3.1 does not clip
    them: boxes that mmdet's NMS suppresses survived it, e.g. 34 boxes
    above 0.05 where mmdet keeps 21).

    Args:
        cls_scores, bbox_preds, kernel_preds (list[Tensor]): The head's
            maps per level: class logits, box distances (pixels), dynamic
            mask kernels.
        mask_feat (Tensor): The mask prototypes.
        batch_img_metas (list[dict]): ``img_shape``, the graph's input size.
        cfg (ConfigDict, optional): Test config; the head's by default.
        Others: Unused, as in mmdeploy (the graph returns boxes in the
            input's frame, NMS applied).
    """
    ctx = FUNCTION_REWRITER.get_context()
    cfg = self.test_cfg if cfg is None else cfg
    post = get_post_processing_params(ctx.cfg)
    priors, bboxes, scores = rtmdet_boxes_in_image(
        self, cls_scores, bbox_preds, batch_img_metas[0]['img_shape'])
    return _nms_with_mask_static(
        self, priors, bboxes, scores,
        _flatten_levels(kernel_preds, self.num_gen_params), mask_feat,
        post.max_output_boxes_per_class,
        cfg.nms.get('iou_threshold', post.iou_threshold),
        cfg.get('score_thr', post.score_threshold), post.pre_top_k,
        cfg.get('max_per_img', post.keep_top_k),
        cfg.get('mask_thr_binary', 0.5))


@rewriter_of_deployed(
    'mmseg.models.decode_heads.decode_head.BaseDecodeHead.predict_by_feat')
def decode_head__predict_by_feat_at_head_size(self, seg_logits: torch.Tensor,
                                              batch_img_metas: List[dict]):
    """The class logits at the head's resolution where the deploy config's
    :data:`RESIZE_LOGITS` is False: the graph ends there, and the label map
    (mmseg's resize to the input size + argmax) is drawn after it by
    :class:`evit_mm.deploy.label_map.LabelMapTail`. Otherwise, and for a
    binary head (one output channel, thresholded in the graph), mmseg's
    resize."""
    ctx = FUNCTION_REWRITER.get_context()
    if ctx.cfg.codebase_config.get(RESIZE_LOGITS, True) or \
            self.out_channels == 1:
        return ctx.origin_func(self, seg_logits, batch_img_metas)
    return seg_logits
