"""Independent references for the tests: the published facts of M0-M5,
timm's ``efficientvit_mX`` models with random, non-trivial weights, the
official (microsoft/Cream) key layout written out from the public model
definition, and the official detectors' neck (names and computation)."""
import re
from collections import OrderedDict
from typing import Dict, Tuple

import timm
import torch
import torch.nn as nn

ARCHS = ('m0', 'm1', 'm2', 'm3', 'm4', 'm5')
# Channels of the three stages (the official model definitions).
EMBED_DIMS = {
    'm0': [64, 128, 192], 'm1': [128, 144, 192], 'm2': [128, 192, 224],
    'm3': [128, 240, 320], 'm4': [128, 256, 384], 'm5': [192, 288, 384]
}
# FLOPs (M multiply-adds) and parameters (M) of the 224x224 classifiers,
# as the EfficientViT paper reports them.
PAPER_FLOPS_PARAMS = {
    'm0': (79, 2.3), 'm1': (167, 3.0), 'm2': (201, 4.2), 'm3': (263, 6.9),
    'm4': (299, 8.8), 'm5': (522, 12.4)
}
# ImageNet-1k top-1 (%) of the official weights (the paper's Table 1).
PAPER_TOP1 = {'m0': 63.2, 'm1': 68.4, 'm2': 70.8, 'm3': 73.4, 'm4': 74.3,
              'm5': 77.1}
# The official ImageNet weights, written out as the "model" links of the
# Model Zoo table in microsoft/Cream's EfficientViT/README.md (the
# repository spelled as there and in classification/model/build.py).
OFFICIAL_WEIGHTS = {
    'm0': 'https://github.com/xinyuliu-jeffrey/EfficientViT_Model_Zoo/releases/download/v1.0/efficientvit_m0.pth',  # noqa: E501
    'm1': 'https://github.com/xinyuliu-jeffrey/EfficientViT_Model_Zoo/releases/download/v1.0/efficientvit_m1.pth',  # noqa: E501
    'm2': 'https://github.com/xinyuliu-jeffrey/EfficientViT_Model_Zoo/releases/download/v1.0/efficientvit_m2.pth',  # noqa: E501
    'm3': 'https://github.com/xinyuliu-jeffrey/EfficientViT_Model_Zoo/releases/download/v1.0/efficientvit_m3.pth',  # noqa: E501
    'm4': 'https://github.com/xinyuliu-jeffrey/EfficientViT_Model_Zoo/releases/download/v1.0/efficientvit_m4.pth',  # noqa: E501
    'm5': 'https://github.com/xinyuliu-jeffrey/EfficientViT_Model_Zoo/releases/download/v1.0/efficientvit_m5.pth',  # noqa: E501
}

# The official COCO detectors: the "model" links of the Model Zoo tables in
# microsoft/Cream's EfficientViT/downstream/README.md (same release as the
# ImageNet weights), and their COCO val2017 AP in the paper (Table 6):
# {config folder: (file, {metric: AP})}.
OFFICIAL_DETECTORS = {
    'retinanet': ('https://github.com/xinyuliu-jeffrey/EfficientViT_Model_Zoo/releases/download/v1.0/retinanet_efficientvit_m4_fpn_1x_coco.pth',  # noqa: E501
                  {'box AP': 32.7}),
    'mask_rcnn': ('https://github.com/xinyuliu-jeffrey/EfficientViT_Model_Zoo/releases/download/v1.0/mask_rcnn_efficientvit_m4_fpn_1x_coco.pth',  # noqa: E501
                  {'box AP': 32.8, 'mask AP': 31.0}),
}


def randomize_(model: nn.Module, seed: int = 0) -> nn.Module:
    """Fill every float tensor (BN statistics included) with random values
    of a realistic scale, so that no branch is trivially zero."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if not tensor.is_floating_point():
                continue
            if name.endswith('running_var'):
                tensor.copy_(torch.rand(tensor.shape, generator=generator) + .5)
            else:
                tensor.copy_(
                    torch.randn(tensor.shape, generator=generator) * .2)
    return model


def timm_model(arch: str, img_size: int = 224, seed: int = 0) -> nn.Module:
    """timm's EfficientViT classifier with random weights, in eval mode.
    ``img_size=224`` gives the ImageNet model (stage-3 window 4);
    ``img_size=448`` gives 7x7 windows in every stage."""
    model = timm.create_model(f'efficientvit_{arch}', img_size=img_size)
    return randomize_(model, seed).eval()


def timm_features(model: nn.Module, x: torch.Tensor) -> Tuple[torch.Tensor]:
    with torch.no_grad():
        return tuple(model.forward_intermediates(x, intermediates_only=True))


def _official_key(key: str) -> str:
    """timm name -> official name. Official stages are lists ``blocksS``;
    stages 2 and 3 start with [dw+FFN, PatchMerging, dw+FFN]; Conv-BN's conv
    is ``c`` and the head's linear ``l``."""
    key = re.sub(r'^patch_embed\.conv(\d)\.',
                 lambda m: f'patch_embed.{(int(m.group(1)) - 1) * 2}.', key)
    match = re.match(r'^stages\.(\d)\.(downsample|blocks)\.(\w+)\.(.*)$', key)
    if match:
        stage, kind, name, rest = match.groups()
        stage = int(stage)
        if kind == 'downsample':
            index = {'res1': 0, 'patchmerge': 1, 'res2': 2}[name]
        else:
            index = int(name) + (3 if stage > 0 else 0)
        key = f'blocks{stage + 1}.{index}.{rest}'
    key = re.sub(r'\.conv\.(weight)$', r'.c.\1', key)
    return re.sub(r'^head\.linear\.', 'head.l.', key)


def official_state_dict(timm_model_: nn.Module) -> Dict[str, torch.Tensor]:
    """The weights of a timm model under official names, with the derived
    ``attention_bias_idxs`` buffers the official checkpoints also carry."""
    state = OrderedDict(
        (_official_key(k), v) for k, v in timm_model_.state_dict().items())
    for name, module in timm_model_.named_modules():
        if hasattr(module, 'attention_bias_idxs'):
            state[_official_key(name + '.attention_bias_idxs')] = \
                module.attention_bias_idxs.clone()
    return state


def relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    """max |actual - expected| / max |expected|: the tests' own measure,
    kept apart from ``evit_mm.analysis.numerics`` (code under test)."""
    return ((actual - expected).abs().max() /
            expected.abs().max().clamp_min(1e-12)).item()


class OfficialConvModule(nn.Module):
    """An mmcv ``ConvModule`` as the official detectors build theirs (no
    norm, no activation): a conv named ``conv``."""

    def __init__(self, conv: nn.Module) -> None:
        super().__init__()
        self.conv = conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class OfficialEfficientViTFPN(nn.Module):
    """The neck of the official COCO detectors, with their names and their
    computation: ``EfficientViTFPN`` of microsoft/Cream's
    ``EfficientViT/downstream/efficientvit_fpn.py`` as its RetinaNet and
    Mask R-CNN configs use it (``start_level=0``, no norm, no activation,
    nearest top-down path), written out for these tests.

    ``lateral_convs`` (1x1) and ``fpn_convs`` (3x3) per backbone level, then
    in ``fpn_convs`` the stride-2 extra convs (the first on the last
    backbone map when ``extra_on_input``); ``extra_trans_convs`` (2x2
    stride-2 transposed convs chained from the finest lateral) and
    ``extra_fpn_convs`` (3x3). The transposed maps are listed finest first
    and ``extra_fpn_convs[i]`` convolves the ``i``-th of that list. Outputs:
    those levels, then the backbone levels, then the extra one.

    Args:
        in_channels (list[int]): Channels of the backbone levels.
        out_channels (int): Channels of every output.
        num_outs (int): Number of outputs.
        num_extra_trans_convs (int): Transposed-conv levels.
        extra_on_input (bool): Make the coarser level with a conv on the
            last backbone map (RetinaNet); otherwise there must be none.
    """

    def __init__(self, in_channels, out_channels: int, num_outs: int,
                 num_extra_trans_convs: int,
                 extra_on_input: bool = False) -> None:
        super().__init__()
        self.lateral_convs = nn.ModuleList(
            OfficialConvModule(nn.Conv2d(c, out_channels, 1))
            for c in in_channels)
        self.fpn_convs = nn.ModuleList(
            OfficialConvModule(nn.Conv2d(out_channels, out_channels, 3,
                                         padding=1)) for _ in in_channels)
        num_coarser = num_outs - len(in_channels) - num_extra_trans_convs
        assert num_coarser == int(extra_on_input)
        if extra_on_input:
            self.fpn_convs.append(
                OfficialConvModule(nn.Conv2d(in_channels[-1], out_channels,
                                             3, stride=2, padding=1)))
        self.extra_trans_convs = nn.ModuleList(
            OfficialConvModule(nn.ConvTranspose2d(out_channels,
                                                  out_channels, 2, stride=2))
            for _ in range(num_extra_trans_convs))
        self.extra_fpn_convs = nn.ModuleList(
            OfficialConvModule(nn.Conv2d(out_channels, out_channels, 3,
                                         padding=1))
            for _ in range(num_extra_trans_convs))
        self.extra_on_input = extra_on_input

    def forward(self, inputs):
        laterals = [conv(x) for conv, x in zip(self.lateral_convs, inputs)]
        for i in range(len(laterals) - 1, 0, -1):
            laterals[i - 1] = laterals[i - 1] + nn.functional.interpolate(
                laterals[i], size=laterals[i - 1].shape[2:], mode='nearest')
        transposed, source = [], laterals[0]
        for trans_conv in self.extra_trans_convs:
            source = trans_conv(source)
            transposed.insert(0, source)
        outs = [self.fpn_convs[i](lateral)
                for i, lateral in enumerate(laterals)]
        if self.extra_on_input:
            outs.append(self.fpn_convs[len(laterals)](inputs[-1]))
        finer = [conv(x) for conv, x in zip(self.extra_fpn_convs, transposed)]
        return tuple(finer + outs)
