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

RTMDet-Ins's NMS, as mmdeploy 1.3.1 exports it, ran on boxes not clipped
to the image (mmdet clips them first): boxes that mmdet's NMS suppresses
survived it, e.g. 34 boxes above 0.05 where mmdet keeps 21.
"""
from typing import Sequence, Union

import torch
import torch.nn.functional as F
from mmdeploy.codebase.mmdet.deploy import clip_bboxes
from mmdeploy.core import FUNCTION_REWRITER
from torch.nn.modules.utils import _pair

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


@FUNCTION_REWRITER.register_rewriter(
    func_name='torch.nn.functional.adaptive_avg_pool2d',
    backend='onnxruntime')
@FUNCTION_REWRITER.register_rewriter(
    func_name='torch.nn.functional.adaptive_avg_pool2d', backend='openvino')
def adaptive_avg_pool2d__any_size(input: torch.Tensor, output_size):
    """Global pooling as exported by torch; other sizes by
    :func:`adaptive_avg_pool2d_any_size`."""
    ctx = FUNCTION_REWRITER.get_context()
    if _pair(output_size) == (1, 1):
        return ctx.origin_func(input, output_size)
    return adaptive_avg_pool2d_any_size(input, output_size)


@FUNCTION_REWRITER.register_rewriter(
    func_name='mmseg.models.utils.Upsample.forward', backend='onnxruntime')
@FUNCTION_REWRITER.register_rewriter(
    func_name='mmseg.models.utils.Upsample.forward', backend='openvino')
def upsample__any_size(self, x: torch.Tensor) -> torch.Tensor:
    """Upsample by the scale factor itself (exported as a ``Resize`` with
    scales), not by a size computed in Python; a fixed ``size`` stays."""
    ctx = FUNCTION_REWRITER.get_context()
    if self.size:
        return ctx.origin_func(self, x)
    return F.interpolate(x, scale_factor=self.scale_factor, mode=self.mode,
                         align_corners=self.align_corners)


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


@FUNCTION_REWRITER.register_rewriter(
    func_name='mmdeploy.codebase.mmdet.models.dense_heads.rtmdet_ins_head.'
    '_nms_with_mask_static')
def nms_with_mask_static__clipped(self, priors: torch.Tensor,
                                  bboxes: torch.Tensor, scores: torch.Tensor,
                                  kernels: torch.Tensor,
                                  mask_feats: torch.Tensor, *args, **kwargs):
    """RTMDet-Ins's NMS and masks on boxes clipped to the input, as
    mmdeploy clips other dense heads' boxes; mmdeploy 1.3.1 does not clip
    these. mmdet clips to the image before padding, a size the graph does
    not know: NMS can still differ for boxes reaching into the padding.

    Args:
        bboxes (Tensor): ``(N, num_priors, 4)`` decoded boxes.
        mask_feats (Tensor): The mask prototypes, at the stride of the
            first level: times that stride, the input's height and width.
        Others: As mmdeploy's ``_nms_with_mask_static``.
    """
    ctx = FUNCTION_REWRITER.get_context()
    stride = self.prior_generator.strides[0][0]
    max_shape = torch._shape_as_tensor(mask_feats)[2:] * stride
    bboxes = torch.stack(clip_bboxes(*bboxes.unbind(-1), max_shape), -1)
    return ctx.origin_func(self, priors, bboxes, scores, kernels, mask_feats,
                           *args, **kwargs)
