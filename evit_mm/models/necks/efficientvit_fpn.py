"""The feature pyramid of EfficientViT's detectors (strides 4/8 to 128 from a
backbone whose finest map has stride 16)."""
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from mmengine.registry import MODELS

from ...checkpoint import fpn_load_pre_hook

_EXTRA_SOURCES = ('on_input', 'on_lateral', 'on_output')


@MODELS.register_module()
class EfficientViTFPN(BaseModule):
    """FPN with transposed-conv levels finer than the backbone's finest one.

    As mmdet's ``FPN`` on the backbone levels (1x1 lateral convs, a nearest
    top-down path, 3x3 output convs), plus ``num_extra_trans_convs`` 2x2
    stride-2 transposed convs chained from the finest lateral, each followed
    by its own 3x3 output conv, for finer levels; coarser levels come from
    stride-2 3x3 convs (``add_extra_convs``) or max-pooling. Outputs are
    ordered fine to coarse. With EfficientViT (strides 16, 32, 64) the
    official detectors use ``num_outs=5`` and

    * RetinaNet: ``num_extra_trans_convs=1, add_extra_convs='on_input'``,
      strides 8, 16, 32, 64, 128;
    * Mask R-CNN: ``num_extra_trans_convs=2``, strides 4, 8, 16, 32, 64;

    and the segmentation models (Semantic FPN, UperNet) use
    ``num_extra_trans_convs=2, num_backbone_outs=2, num_outs=4``: strides 4,
    8, 16, 32, the stride-64 map reaching them through the top-down path.

    Args:
        in_channels (Sequence[int]): Channels of each backbone level, fine to
            coarse; every level is used.
        out_channels (int): Channels of every output level.
        num_outs (int): Number of output levels, at least
            ``num_backbone_outs + num_extra_trans_convs``.
        num_extra_trans_convs (int): Levels made finer than the backbone's
            finest one by transposed convs. Defaults to 0.
        num_backbone_outs (int, optional): How many backbone levels, finest
            first, get an output; the coarser ones only feed the top-down
            path (no output convs are built for them) and no levels coarser
            than the backbone's can be added. Defaults to all levels.
        add_extra_convs (bool | str): How levels coarser than the backbone's
            coarsest are made: ``False`` max-pools the last output; a source
            ``'on_input'`` (``True`` means this), ``'on_lateral'`` or
            ``'on_output'`` feeds a chain of stride-2 3x3 convs. Defaults to
            False.
        relu_before_extra_convs (bool): Apply ReLU before the second and
            later extra convs. Defaults to False.
        conv_cfg (dict, optional): Conv layer config of the lateral and output
            convs.
        norm_cfg (dict, optional): Norm layer config of every conv.
        act_cfg (dict, optional): Activation config of every conv.
        upsample_cfg (dict): ``F.interpolate`` arguments of the top-down
            path. Defaults to ``dict(mode='nearest')``.
        init_cfg (dict | list[dict], optional): Initialisation config.
            Defaults to Xavier-uniform convs and transposed convs.
    """

    def __init__(self,
                 in_channels: Sequence[int],
                 out_channels: int,
                 num_outs: int,
                 num_extra_trans_convs: int = 0,
                 num_backbone_outs: Optional[int] = None,
                 add_extra_convs: Union[bool, str] = False,
                 relu_before_extra_convs: bool = False,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: Optional[dict] = None,
                 act_cfg: Optional[dict] = None,
                 upsample_cfg: dict = dict(mode='nearest'),
                 init_cfg: Union[dict, List[dict], None] = dict(
                     type='Xavier',
                     layer=['Conv2d', 'ConvTranspose2d'],
                     distribution='uniform')) -> None:
        super().__init__(init_cfg=init_cfg)
        self.in_channels = self._check_in_channels(in_channels)
        self.out_channels = out_channels
        self.num_outs = num_outs
        self.num_extra_trans_convs = num_extra_trans_convs
        self.add_extra_convs = self._check_extra_source(add_extra_convs)
        self.relu_before_extra_convs = relu_before_extra_convs
        self.upsample_cfg = dict(upsample_cfg)
        num_ins = len(self.in_channels)
        if not isinstance(num_extra_trans_convs, int) or \
                num_extra_trans_convs < 0:
            raise ValueError(
                f'num_extra_trans_convs={num_extra_trans_convs!r} must be a '
                'non-negative int.')
        self.num_backbone_outs = self._check_backbone_outs(
            num_backbone_outs, num_ins)
        num_made = self.num_backbone_outs + num_extra_trans_convs
        if not isinstance(num_outs, int) or num_outs < num_made:
            raise ValueError(
                f'num_outs={num_outs!r} is too small: the '
                f'{self.num_backbone_outs} backbone levels and '
                f'{num_extra_trans_convs} transposed-conv levels need at '
                f'least {num_made}.')
        if self.num_backbone_outs < num_ins and num_outs != num_made:
            raise ValueError(
                f'num_outs={num_outs!r} must be {num_made} when '
                f'num_backbone_outs={num_backbone_outs!r} drops backbone '
                'levels: no coarser levels can be added then.')
        self.num_coarser = num_outs - num_made

        def conv(in_ch: int, kernel: int, stride: int = 1,
                 layer_cfg: Optional[dict] = conv_cfg) -> ConvModule:
            return ConvModule(
                in_ch,
                out_channels,
                kernel,
                stride=stride,
                padding=(kernel - 1) // 2 if kernel % 2 else 0,
                conv_cfg=layer_cfg,
                norm_cfg=norm_cfg,
                act_cfg=act_cfg,
                inplace=False)

        self.lateral_convs = nn.ModuleList(conv(c, 1) for c in in_channels)
        self.fpn_convs = nn.ModuleList(
            conv(out_channels, 3) for _ in range(self.num_backbone_outs))
        self.trans_convs = nn.ModuleList(
            conv(out_channels, 2, stride=2, layer_cfg=dict(type='deconv'))
            for _ in range(num_extra_trans_convs))
        self.trans_fpn_convs = nn.ModuleList(
            conv(out_channels, 3) for _ in range(num_extra_trans_convs))
        self.extra_convs = nn.ModuleList()
        if self.add_extra_convs:
            for i in range(self.num_coarser):
                first_in = in_channels[-1] if (
                    i == 0 and self.add_extra_convs == 'on_input') \
                    else out_channels
                self.extra_convs.append(conv(first_in, 3, stride=2))
        # Every loader takes the official release's neck names and loads
        # the whole neck or fails.
        self.register_load_state_dict_pre_hook(fpn_load_pre_hook)

    @staticmethod
    def _check_in_channels(in_channels: Sequence[int]) -> List[int]:
        if not isinstance(in_channels, (list, tuple)) or not in_channels or \
                not all(isinstance(c, int) and c > 0 for c in in_channels):
            raise ValueError(f'in_channels={in_channels!r} must be a '
                             'non-empty list of positive ints, one per '
                             'backbone level.')
        return list(in_channels)

    @staticmethod
    def _check_backbone_outs(num_backbone_outs: Optional[int],
                             num_ins: int) -> int:
        if num_backbone_outs is None:
            return num_ins
        if not isinstance(num_backbone_outs, int) or \
                not 1 <= num_backbone_outs <= num_ins:
            raise ValueError(
                f'num_backbone_outs={num_backbone_outs!r} is invalid; '
                f'allowed: None or 1..{num_ins} (the backbone levels).')
        return num_backbone_outs

    @staticmethod
    def _check_extra_source(add_extra_convs: Union[bool, str]
                            ) -> Union[bool, str]:
        if add_extra_convs is True:
            return 'on_input'
        if add_extra_convs is False or add_extra_convs in _EXTRA_SOURCES:
            return add_extra_convs
        raise ValueError(f'add_extra_convs={add_extra_convs!r} is invalid; '
                         f'allowed: False, True, {list(_EXTRA_SOURCES)}.')

    def _top_down(self, laterals: List[torch.Tensor]) -> List[torch.Tensor]:
        for i in range(len(laterals) - 1, 0, -1):
            if 'scale_factor' in self.upsample_cfg:
                upsampled = F.interpolate(laterals[i], **self.upsample_cfg)
            else:
                upsampled = F.interpolate(
                    laterals[i], size=laterals[i - 1].shape[2:],
                    **self.upsample_cfg)
            laterals[i - 1] = laterals[i - 1] + upsampled
        return laterals

    def _coarser_levels(self, inputs: Sequence[torch.Tensor],
                        laterals: List[torch.Tensor],
                        outs: List[torch.Tensor]) -> List[torch.Tensor]:
        levels: List[torch.Tensor] = []
        if not self.add_extra_convs:
            for _ in range(self.num_coarser):
                levels.append(
                    F.max_pool2d((levels or outs)[-1], 1, stride=2))
            return levels
        source = dict(
            on_input=inputs[-1], on_lateral=laterals[-1],
            on_output=outs[-1])[self.add_extra_convs]
        for i, extra_conv in enumerate(self.extra_convs):
            if i > 0 and self.relu_before_extra_convs:
                source = F.relu(source)
            source = extra_conv(source)
            levels.append(source)
        return levels

    def forward(self, inputs: Sequence[torch.Tensor]
                ) -> Tuple[torch.Tensor, ...]:
        """Pyramid levels, fine to coarse.

        Args:
            inputs (Sequence[Tensor]): One NCHW map per backbone level, fine
                to coarse.

        Returns:
            tuple[Tensor]: ``num_outs`` maps with ``out_channels`` channels.
        """
        if len(inputs) != len(self.in_channels):
            raise ValueError(
                f'EfficientViTFPN got {len(inputs)} input levels but was '
                f'built for {len(self.in_channels)} (in_channels='
                f'{self.in_channels}); check the backbone out_indices.')
        laterals = self._top_down(
            [conv(x) for conv, x in zip(self.lateral_convs, inputs)])
        finer, current = [], laterals[0]
        for trans_conv, fpn_conv in zip(self.trans_convs,
                                        self.trans_fpn_convs):
            current = trans_conv(current)
            finer.insert(0, fpn_conv(current))
        outs = [conv(x) for conv, x in zip(self.fpn_convs, laterals)]
        return tuple(finer + outs +
                     self._coarser_levels(inputs, laterals, outs))
