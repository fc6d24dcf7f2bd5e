"""EfficientViT (MSRA, CVPR 2023) backbone for mmdet, mmseg and mmpretrain."""
import contextlib
from typing import Dict, Iterator, List, Optional, Sequence, Tuple, Union

import torch
import torch.fx
import torch.nn as nn
import torch.utils.checkpoint as cp
from mmengine.model import BaseModule
from mmengine.registry import MODELS
from torch.nn.modules.batchnorm import _BatchNorm

from ...checkpoint import (adapt_model_state_dict, backbone_load_pre_hook,
                           load_backbone_checkpoint)
from ..layers import (ACT_TYPES, BN_EPS, NORM_TYPES, EfficientViTBlock, PatchEmbed,
                      StageDownsample, check_layer_cfg, fuse_conv_bn)


@contextlib.contextmanager
def frozen_bn_statistics(module: nn.Module) -> Iterator[None]:
    """Restore the running statistics of ``module``'s BatchNorm layers on
    leaving the context: a checkpointed block recomputed in backward must
    not update them a second time."""
    buffers = [
        buf for m in module.modules() if isinstance(m, _BatchNorm)
        for buf in m.buffers()
    ]
    saved = [buf.clone() for buf in buffers]
    try:
        yield
    finally:
        with torch.no_grad():
            for buf, value in zip(buffers, saved):
                buf.copy_(value)


class EfficientViTStage(nn.Module):
    """One stage: an optional downsample, then EfficientViT blocks.

    Args:
        in_channels (int): Channels of the previous stage (or patch embed).
        out_channels (int): Channels of this stage.
        depth (int): Number of EfficientViT blocks.
        key_dim (int): Channels of q and k per head.
        num_heads (int): Attention heads.
        window_size (int): Attention window side.
        kernels (Sequence[int]): Depth-wise q kernel of each head.
        downsample (bool): Start with a stride-2 downsample.
        drop_paths (Sequence[float]): Stochastic depth rate of each block.
        with_cp (bool): Recompute each block in backward to save memory.
        deploy (bool): Build fused convs.
        norm_cfg (dict): The BatchNorm of every Conv-BN. Defaults to
            ``dict(type='BN')``.
        act_cfg (dict): The activation. Defaults to ``dict(type='ReLU')``.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 depth: int,
                 key_dim: int,
                 num_heads: int,
                 window_size: int,
                 kernels: Sequence[int],
                 downsample: bool,
                 drop_paths: Sequence[float],
                 with_cp: bool = False,
                 deploy: bool = False,
                 norm_cfg: dict = dict(type='BN'),
                 act_cfg: dict = dict(type='ReLU')) -> None:
        super().__init__()
        self.with_cp = with_cp
        self.downsample = StageDownsample(
            in_channels, out_channels, drop_paths[0], deploy, norm_cfg,
            act_cfg) if downsample else None
        self.blocks = nn.Sequential(*[
            EfficientViTBlock(out_channels, key_dim, num_heads, window_size,
                              kernels, drop_paths[i], deploy, norm_cfg,
                              act_cfg) for i in range(depth)
        ])

    def _run(self, layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
        if self.with_cp and x.requires_grad:
            return cp.checkpoint(
                layer,
                x,
                use_reentrant=False,
                context_fn=lambda: (contextlib.nullcontext(),
                                    frozen_bn_statistics(layer)))
        return layer(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.downsample is not None:
            x = self._run(self.downsample, x)
        for block in self.blocks:
            x = self._run(block, x)
        return x


@MODELS.register_module()
class EfficientViT(BaseModule):
    """EfficientViT backbone.

    A PyTorch implementation of `EfficientViT: Memory Efficient Vision
    Transformer with Cascaded Group Attention
    <https://arxiv.org/abs/2305.07027>`_. It returns NCHW maps at strides 16,
    32 and 64 for inputs of any size and, on request, the stride-4 and
    stride-8 maps that its patch embedding computes on the way.

    Args:
        arch (str | dict): One of ``'m0'`` ... ``'m5'``, or a dict with the
            keys ``embed_dims``, ``depths``, ``num_heads``, ``kernels`` and
            optionally ``key_dims`` (default 16 per stage).
        in_channels (int): Image channels. Defaults to 3.
        window_size (int | Sequence[int]): Attention window side, one value
            for all stages or one per stage. ImageNet classifiers at 224x224
            use ``(7, 7, 4)`` as the official model. Defaults to 7.
        out_indices (Sequence[int] | int): Stages whose outputs are returned.
            Stages after the last one listed are neither run nor trained
            (frozen), but kept, so that whole checkpoints still fit.
            Defaults to all three.
        embed_out_strides (Sequence[int]): Patch-embedding maps returned
            before the stage outputs, finest first: a subset of ``(4, 8)``.
            Stride 4 has ``embed_dims[0] // 4`` channels, stride 8
            ``embed_dims[0] // 2``; both are the ReLU activations the next
            embedding conv consumes, so they cost no extra computation.
            Defaults to ``()``.
        frozen_stages (int): ``-1`` freezes nothing, ``0`` the patch embed,
            ``i`` the patch embed and stages ``1..i``. Defaults to -1.
        norm_eval (bool): Keep all BN layers in eval mode while training.
            Defaults to False.
        drop_path_rate (float): Stochastic depth rate, rising linearly over
            the blocks. Defaults to 0.
        with_cp (bool): Use gradient checkpointing per block. Defaults to
            False.
        deploy (bool): Build the fused (inference) form: every Conv-BN is a
            conv with bias. Defaults to False.
        norm_cfg (dict): The norm layer of every Conv-BN, as the OpenMMLab
            backbones take it: ``type`` one of ``'BN'``, ``'BN2d'`` or
            ``'SyncBN'`` (norms that fold into the convolution), with their
            arguments (``eps`` defaults to 1e-5 as in the official model,
            ``momentum``, ``requires_grad``). Checkpoints load whichever is
            chosen. Defaults to ``dict(type='BN')``.
        act_cfg (dict): The activation of every layer that has one, as the
            OpenMMLab backbones take it: ``type`` one of ``'ReLU'``
            (the official model's), ``'ReLU6'``, ``'LeakyReLU'``, ``'ELU'``,
            ``'GELU'``, ``'SiLU'`` or ``'HSwish'``, with their arguments.
            Defaults to ``dict(type='ReLU')``.
        init_cfg (dict, optional): ``dict(type='Pretrained',
            checkpoint=..., prefix=...)`` loads official, timm or evit_mm
            checkpoints (see :mod:`evit_mm.checkpoint`).
    """
    arch_zoo: Dict[str, dict] = {
        'm0': dict(embed_dims=[64, 128, 192], depths=[1, 2, 3],
                   num_heads=[4, 4, 4], kernels=[5, 5, 5, 5]),
        'm1': dict(embed_dims=[128, 144, 192], depths=[1, 2, 3],
                   num_heads=[2, 3, 3], kernels=[7, 5, 3, 3]),
        'm2': dict(embed_dims=[128, 192, 224], depths=[1, 2, 3],
                   num_heads=[4, 3, 2], kernels=[7, 5, 3, 3]),
        'm3': dict(embed_dims=[128, 240, 320], depths=[1, 2, 3],
                   num_heads=[4, 3, 4], kernels=[5, 5, 5, 5]),
        'm4': dict(embed_dims=[128, 256, 384], depths=[1, 2, 3],
                   num_heads=[4, 4, 4], kernels=[7, 5, 3, 3]),
        'm5': dict(embed_dims=[192, 288, 384], depths=[1, 3, 4],
                   num_heads=[3, 3, 4], kernels=[7, 5, 3, 3]),
    }  # yapf: disable
    num_stages = 3
    strides = (16, 32, 64)
    embed_strides = (4, 8)

    def __init__(self,
                 arch: Union[str, dict] = 'm0',
                 in_channels: int = 3,
                 window_size: Union[int, Sequence[int]] = 7,
                 out_indices: Union[int, Sequence[int]] = (0, 1, 2),
                 embed_out_strides: Sequence[int] = (),
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 drop_path_rate: float = 0.,
                 with_cp: bool = False,
                 deploy: bool = False,
                 norm_cfg: dict = dict(type='BN'),
                 act_cfg: dict = dict(type='ReLU'),
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.arch_settings = self._parse_arch(arch)
        self.arch = arch if isinstance(arch, str) else 'custom'
        self.in_channels = in_channels
        self.window_sizes = self._parse_window_size(window_size)
        self.out_indices = self._parse_out_indices(out_indices)
        self.embed_out_strides = self._parse_embed_out_strides(
            embed_out_strides)
        if not isinstance(frozen_stages, int) or not (
                -1 <= frozen_stages <= self.num_stages):
            raise ValueError(
                f'frozen_stages={frozen_stages!r} is out of range; allowed: '
                f'-1 (none), 0 (patch embed) ... {self.num_stages}.')
        if not 0. <= drop_path_rate < 1.:
            raise ValueError(f'drop_path_rate={drop_path_rate!r} must lie '
                             'in [0, 1).')
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.with_cp = with_cp
        self.deploy = deploy

        dims = self.arch_settings['embed_dims']
        depths = self.arch_settings['depths']
        self.embed_dims = list(dims)
        self.norm_cfg = check_layer_cfg('norm_cfg', norm_cfg, NORM_TYPES)
        # its BatchNorms' eps, for fusing the unfused weights it loads
        self.bn_eps = self.norm_cfg.get('eps', BN_EPS)
        self.act_cfg = check_layer_cfg('act_cfg', act_cfg, ACT_TYPES)
        self.patch_embed = PatchEmbed(in_channels, dims[0], deploy, norm_cfg,
                                      act_cfg)
        self.out_strides = self.embed_out_strides + [
            self.strides[i] for i in self.out_indices
        ]
        self.out_channels = [
            self.patch_embed.map_channels[s] for s in self.embed_out_strides
        ] + [dims[i] for i in self.out_indices]
        drop_paths = torch.linspace(0, drop_path_rate, sum(depths)).tolist()
        self.stages = nn.ModuleList()
        for i in range(self.num_stages):
            start = sum(depths[:i])
            self.stages.append(
                EfficientViTStage(
                    in_channels=dims[max(i - 1, 0)],
                    out_channels=dims[i],
                    depth=depths[i],
                    key_dim=self.arch_settings['key_dims'][i],
                    num_heads=self.arch_settings['num_heads'][i],
                    window_size=self.window_sizes[i],
                    kernels=self.arch_settings['kernels'],
                    downsample=i > 0,
                    drop_paths=drop_paths[start:start + depths[i]],
                    with_cp=with_cp,
                    deploy=deploy,
                    norm_cfg=norm_cfg,
                    act_cfg=act_cfg))
        self._freeze_stages()
        # Every loader (load_from, tools/test.py, init_detector, the
        # inferencers) converts official and timm names and loads the whole
        # backbone or fails.
        self.register_load_state_dict_pre_hook(backbone_load_pre_hook)

    def _parse_arch(self, arch: Union[str, dict]) -> dict:
        if isinstance(arch, str):
            key = arch.lower()
            if key not in self.arch_zoo:
                raise ValueError(f'Unknown arch {arch!r}; allowed: '
                                 f'{sorted(self.arch_zoo)} or a dict.')
            settings = dict(self.arch_zoo[key])
        elif isinstance(arch, dict):
            required = {'embed_dims', 'depths', 'num_heads', 'kernels'}
            allowed = required | {'key_dims'}
            if not required <= set(arch) or not set(arch) <= allowed:
                raise ValueError(
                    f'A custom arch needs the keys {sorted(required)} (and '
                    f'optionally "key_dims"), got {sorted(arch)}.')
            settings = dict(arch)
        else:
            raise TypeError(f'arch must be a str or dict, got {arch!r}.')
        settings.setdefault('key_dims', [16] * self.num_stages)
        for name in ('embed_dims', 'depths', 'num_heads', 'key_dims'):
            if len(settings[name]) != self.num_stages:
                raise ValueError(
                    f'arch["{name}"]={settings[name]!r} needs '
                    f'{self.num_stages} values, one per stage.')
        for dim, heads in zip(settings['embed_dims'], settings['num_heads']):
            if dim % heads or (dim // 8) * 8 != dim:
                raise ValueError(
                    f'embed_dim {dim} must be a multiple of 8 and of its '
                    f'num_heads {heads}.')
        if len(settings['kernels']) < max(settings['num_heads']):
            raise ValueError(
                f'arch["kernels"]={settings["kernels"]!r} needs one kernel '
                f'per head: at least {max(settings["num_heads"])} values.')
        if any(k % 2 == 0 for k in settings['kernels']):
            raise ValueError(f'arch["kernels"]={settings["kernels"]!r} must '
                             'all be odd.')
        return settings

    def _parse_window_size(
            self, window_size: Union[int, Sequence[int]]) -> List[int]:
        sizes = [window_size] * self.num_stages if isinstance(
            window_size, int) else list(window_size)
        if len(sizes) != self.num_stages or not all(
                isinstance(s, int) and s >= 1 for s in sizes):
            raise ValueError(
                f'window_size={window_size!r} is invalid; allowed: a '
                f'positive int or {self.num_stages} positive ints.')
        return sizes

    def _parse_out_indices(
            self, out_indices: Union[int, Sequence[int]]) -> List[int]:
        if isinstance(out_indices, int):
            out_indices = [out_indices]
        parsed = []
        for index in out_indices:
            if not isinstance(index, int) or not (
                    -self.num_stages <= index < self.num_stages):
                raise ValueError(
                    f'out_indices={out_indices!r} has {index!r}; allowed: '
                    f'0..{self.num_stages - 1} (or negative from the end).')
            parsed.append(index % self.num_stages)
        if not parsed or len(set(parsed)) != len(parsed):
            raise ValueError(f'out_indices={out_indices!r} must list '
                             'distinct stages.')
        return sorted(parsed)

    def _parse_embed_out_strides(
            self, embed_out_strides: Sequence[int]) -> List[int]:
        if isinstance(embed_out_strides, int):
            embed_out_strides = [embed_out_strides]
        valid = isinstance(embed_out_strides, Sequence) and not isinstance(
            embed_out_strides, str) and all(
                isinstance(s, int) and s in self.embed_strides
                for s in embed_out_strides)
        if not valid or len(set(embed_out_strides)) != len(embed_out_strides):
            raise ValueError(
                f'embed_out_strides={embed_out_strides!r} is invalid; '
                f'allowed: distinct values from {self.embed_strides} (the '
                'patch embedding maps), e.g. (8, ) or (4, 8), or () for '
                'none.')
        return sorted(embed_out_strides)

    def init_weights(self) -> None:
        if self.init_cfg is not None and self.init_cfg.get(
                'type') == 'Pretrained':
            load_backbone_checkpoint(
                self,
                self.init_cfg['checkpoint'],
                prefix=self.init_cfg.get('prefix'),
                map_location=self.init_cfg.get('map_location', 'cpu'))
            self._is_init = True
        else:
            super().init_weights()

    def _check_input(self, x: torch.Tensor) -> None:
        if isinstance(x, torch.fx.Proxy):
            return  # torch.fx symbolic tracing: no values to check
        if not isinstance(x, torch.Tensor) or x.dim() != 4:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x)
            raise ValueError('EfficientViT expects a 4-D (N, C, H, W) float '
                             f'tensor, got {shape}.')
        if x.shape[1] != self.in_channels:
            raise ValueError(f'Input has {x.shape[1]} channels, the model '
                             f'was built with in_channels={self.in_channels}.')
        if not x.is_floating_point():
            raise TypeError(f'Input dtype {x.dtype} is not floating point; '
                            'convert images with .float() first.')
        if x.numel() == 0:
            raise ValueError(f'Input of shape {tuple(x.shape)} is empty.')

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """The ``embed_out_strides`` maps of the patch embedding, then those
        of the ``out_indices`` stages, NCHW-contiguous.

        Inside, maps are kept channels-last: 1x1 convolutions and attention
        then read them as token matrices without copies.
        """
        self._check_input(x)
        x, embed_maps = self.patch_embed.forward_with_maps(
            x.contiguous(memory_format=torch.channels_last),
            self.embed_out_strides)
        outs = [m.contiguous() for m in embed_maps]
        for i, stage in enumerate(self.stages[:self.out_indices[-1] + 1]):
            x = stage(x)
            if i in self.out_indices:
                outs.append(x.contiguous())
        return tuple(outs)

    def _frozen_modules(self) -> List[nn.Module]:
        """The frozen stages, then the stages after the last output."""
        unused = list(self.stages[self.out_indices[-1] + 1:])
        if self.frozen_stages < 0:
            return unused
        return [self.patch_embed, *self.stages[:self.frozen_stages], *unused]

    def _freeze_stages(self) -> None:
        for module in self._frozen_modules():
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def train(self, mode: bool = True) -> 'EfficientViT':
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for module in self.modules():
                if isinstance(module, _BatchNorm):
                    module.eval()
        return self

    def switch_to_deploy(self) -> None:
        """Fuse every Conv-BN into a conv in place (inference only)."""
        fuse_conv_bn(self)
        self.deploy = True

    def _checkpoint_filter(self, state_dict: dict, prefix: str,
                           *args) -> None:
        """Load-state-dict pre-hook that mmpretrain's ``ImageClassifier``
        registers for its backbone: whole-model official and timm
        checkpoints load directly (see
        :func:`evit_mm.checkpoint.adapt_model_state_dict`)."""
        adapt_model_state_dict(state_dict, prefix, self)
