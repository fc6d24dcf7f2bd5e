"""Building blocks of EfficientViT: fusable Conv-BN, residual branches,
feed-forward, squeeze-excite, patch merging and cascaded group attention.

Every layer runs through its own module call, so forward hooks (counters,
observers, visualisers) see every convolution, norm and activation."""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.fx
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_activation_layer, build_norm_layer
from mmcv.cnn.bricks import DropPath
from torch.nn.utils.fusion import fuse_conv_bn_weights

from ..checkpoint.convert import fuse_bn_linear_weights

# The eps of every BatchNorm in EfficientViT: PyTorch's default, which the
# official model, timm's and evit_mm's all build their BN layers with. A
# state dict does not store eps, so fusing one needs it from here.
BN_EPS = 1e-5

# Point-wise convs on the CPU with fewer multiply-accumulates than this run
# as a matrix product on the token view: oneDNN's fixed cost per convolution
# call (tens of microseconds) dominates such small layers. With one thread
# the cost is lower and oneDNN wins sooner.
SMALL_POINTWISE_MACS = 2**22
SMALL_POINTWISE_MACS_ONE_THREAD = 2**20

# Norm layers that fold into the preceding convolution (``norm_cfg``), and
# element-wise activations (``act_cfg``), by their mmcv registry names.
NORM_TYPES = ('BN', 'BN2d', 'SyncBN')
ACT_TYPES = ('ReLU', 'ReLU6', 'LeakyReLU', 'ELU', 'GELU', 'SiLU', 'HSwish')


def check_layer_cfg(name: str, cfg: dict, allowed: Sequence[str]) -> dict:
    """Return ``cfg`` if it is a layer config whose ``type`` is one of
    ``allowed``; raise a ``ValueError`` naming both otherwise.

    Args:
        name (str): The argument's name, for the message.
        cfg (dict): The config, e.g. ``dict(type='BN')``.
        allowed (Sequence[str]): Allowed values of ``cfg['type']``.
    """
    if not isinstance(cfg, dict) or cfg.get('type') not in allowed:
        raise ValueError(f'{name}={cfg!r} is not supported; allowed: a dict '
                         f'whose "type" is one of {list(allowed)}.')
    return cfg


def build_activation(act_cfg: dict) -> nn.Module:
    """An activation layer from ``act_cfg`` (one of :data:`ACT_TYPES`),
    in place unless the config says ``inplace=False`` (as mmcv's
    ``ConvModule`` builds them; GELU has no in-place form).

    Args:
        act_cfg (dict): The config, e.g. ``dict(type='ReLU')``.
    """
    act_cfg = check_layer_cfg('act_cfg', act_cfg, ACT_TYPES)
    if act_cfg['type'] != 'GELU':
        act_cfg = {'inplace': True, **act_cfg}
    return build_activation_layer(act_cfg)


def is_tracing(x: torch.Tensor) -> bool:
    """Whether ``x`` is being recorded into a graph (``torch.jit.trace``,
    ``torch.onnx.export``, ``torch.fx.symbolic_trace``, ``torch.compile``,
    ``torch.export``) rather than computed: the graph must then hold
    operations that are right at every input size, and no Python decision
    on a shape."""
    return torch.jit.is_tracing() or torch.compiler.is_compiling() or \
        isinstance(x, torch.fx.Proxy)


class MatmulConv2d(nn.Conv2d):
    """``nn.Conv2d`` that computes small 1x1 (stride 1, one group)
    convolutions on the CPU as a matrix product over the tokens of the
    (channels-last) map: the same result with less per-call overhead than a
    convolution kernel. On other devices, and in recorded graphs (see
    :func:`is_tracing`), it is a plain convolution. Takes the arguments of
    ``nn.Conv2d``."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.as_matmul = self.kernel_size == (1, 1) and self.stride == (
            1, 1) and self.groups == 1 and self.padding == (0, 0)

    def use_matmul(self, x: torch.Tensor) -> bool:
        """Whether ``x`` takes the matrix product (small, eager, CPU)."""
        if not self.as_matmul or is_tracing(x) or not x.is_cpu:
            return False
        limit = SMALL_POINTWISE_MACS if torch.get_num_threads() > 1 else \
            SMALL_POINTWISE_MACS_ONE_THREAD
        return x.numel() * self.out_channels < limit

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.use_matmul(x):
            return F.linear(
                x.permute(0, 2, 3, 1), self.weight.flatten(1),
                self.bias).permute(0, 3, 1, 2)
        return self._conv_forward(x, self.weight, self.bias)


class ConvBN(nn.Module):
    """A bias-free convolution followed by BatchNorm, fusable into one conv.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        kernel_size (int): Kernel size. Padding keeps the size at stride 1.
        stride (int): Stride. Defaults to 1.
        groups (int): Convolution groups. Defaults to 1.
        bn_weight_init (float): Initial BN scale; 0 makes a residual branch
            start as the identity. Defaults to 1.
        deploy (bool): Build the fused form directly (a conv with bias and no
            BN), e.g. to load a fused checkpoint. Defaults to False.
        norm_cfg (dict): The BatchNorm, one of :data:`NORM_TYPES`; its eps
            defaults to that of the official model. Defaults to
            ``dict(type='BN')``.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 kernel_size: int = 1,
                 stride: int = 1,
                 groups: int = 1,
                 bn_weight_init: float = 1.,
                 deploy: bool = False,
                 norm_cfg: dict = dict(type='BN')) -> None:
        super().__init__()
        norm_cfg = check_layer_cfg('norm_cfg', norm_cfg, NORM_TYPES)
        self.conv = MatmulConv2d(
            in_channels,
            out_channels,
            kernel_size,
            stride,
            padding=kernel_size // 2,
            groups=groups,
            bias=deploy)
        self.bn: Optional[nn.BatchNorm2d] = None
        if not deploy:
            _, self.bn = build_norm_layer({
                'eps': BN_EPS,
                **norm_cfg
            }, out_channels)
            nn.init.constant_(self.bn.weight, bn_weight_init)
            nn.init.zeros_(self.bn.bias)

    @property
    def fused(self) -> bool:
        return self.bn is None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        return out if self.bn is None else self.bn(out)

    @torch.no_grad()
    def switch_to_deploy(self) -> None:
        """Fold the BN statistics and affine parameters into the conv."""
        if self.fused:
            return
        conv, bn = self.conv, self.bn
        conv.weight, conv.bias = fuse_conv_bn_weights(
            conv.weight, conv.bias, bn.running_mean, bn.running_var, bn.eps,
            bn.weight, bn.bias)
        conv.bias.requires_grad_(conv.weight.requires_grad)
        self.bn = None


class BNLinear(nn.Module):
    """BatchNorm1d followed by a linear layer, fusable into one linear.

    Args:
        in_features (int): Input features.
        out_features (int): Output features.
        deploy (bool): Build the fused form (a linear layer only).
            Defaults to False.
    """

    def __init__(self,
                 in_features: int,
                 out_features: int,
                 deploy: bool = False) -> None:
        super().__init__()
        self.bn: Optional[nn.BatchNorm1d] = None if deploy else \
            nn.BatchNorm1d(in_features, eps=BN_EPS)
        self.linear = nn.Linear(in_features, out_features)
        nn.init.trunc_normal_(self.linear.weight, std=.02)
        nn.init.zeros_(self.linear.bias)

    @property
    def fused(self) -> bool:
        return self.bn is None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x if self.bn is None else self.bn(x))

    @torch.no_grad()
    def switch_to_deploy(self) -> None:
        """Fold the BN into the linear layer."""
        if self.fused:
            return
        bn, linear = self.bn, self.linear
        weight, bias = fuse_bn_linear_weights(linear.weight, linear.bias,
                                              bn.running_mean,
                                              bn.running_var, bn.eps,
                                              bn.weight, bn.bias)
        linear.weight.copy_(weight)
        linear.bias.copy_(bias)
        self.bn = None


class Residual(nn.Module):
    """``x + drop_path(branch(x))``, always as a new tensor: the branch's
    output stays what its forward hooks saw.

    Args:
        branch (nn.Module): The residual branch.
        drop_path (float): Stochastic depth rate of the branch.
    """

    def __init__(self, branch: nn.Module, drop_path: float = 0.) -> None:
        super().__init__()
        self.branch = branch
        self.drop_path = DropPath(drop_path) if drop_path > 0 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.branch(x)
        if self.drop_path is not None:
            out = self.drop_path(out)
        return x + out


class ConvFFN(nn.Module):
    """Point-wise feed-forward: 1x1 Conv-BN, activation, 1x1 Conv-BN.

    Args:
        channels (int): Input and output channels.
        hidden_channels (int): Hidden channels.
        deploy (bool): Build fused convs.
        norm_cfg (dict): The BatchNorm of every Conv-BN. Defaults to
            ``dict(type='BN')``.
        act_cfg (dict): The activation. Defaults to ``dict(type='ReLU')``.
    """

    def __init__(self,
                 channels: int,
                 hidden_channels: int,
                 deploy: bool = False,
                 norm_cfg: dict = dict(type='BN'),
                 act_cfg: dict = dict(type='ReLU')) -> None:
        super().__init__()
        self.pw1 = ConvBN(
            channels, hidden_channels, deploy=deploy, norm_cfg=norm_cfg)
        self.act = build_activation(act_cfg)
        self.pw2 = ConvBN(
            hidden_channels,
            channels,
            bn_weight_init=0.,
            deploy=deploy,
            norm_cfg=norm_cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pw2(self.act(self.pw1(x)))


def depthwise_residual(channels: int,
                       drop_path: float = 0.,
                       deploy: bool = False,
                       norm_cfg: dict = dict(type='BN')) -> Residual:
    """Residual 3x3 depth-wise Conv-BN (token interaction)."""
    return Residual(
        ConvBN(
            channels,
            channels,
            3,
            groups=channels,
            bn_weight_init=0.,
            deploy=deploy,
            norm_cfg=norm_cfg), drop_path)


def ffn_residual(channels: int,
                 drop_path: float = 0.,
                 deploy: bool = False,
                 norm_cfg: dict = dict(type='BN'),
                 act_cfg: dict = dict(type='ReLU')) -> Residual:
    """Residual feed-forward with expansion ratio 2."""
    return Residual(
        ConvFFN(channels, channels * 2, deploy, norm_cfg, act_cfg), drop_path)


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation with a hidden activation and a sigmoid gate.

    Written here because mmcv and mmengine have none (mmpretrain's
    ``SELayer`` would make mmpretrain a requirement of the backbone).

    Args:
        channels (int): Input channels.
        reduced_channels (int): Channels of the hidden layer.
        act_cfg (dict): The hidden activation. Defaults to
            ``dict(type='ReLU')``.
    """

    def __init__(self,
                 channels: int,
                 reduced_channels: int,
                 act_cfg: dict = dict(type='ReLU')) -> None:
        super().__init__()
        self.fc1 = MatmulConv2d(channels, reduced_channels, 1)
        self.act = build_activation(act_cfg)
        self.fc2 = MatmulConv2d(reduced_channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.fc2(self.act(self.fc1(x.mean((2, 3), keepdim=True))))
        return x * scale.sigmoid()


class PatchMerging(nn.Module):
    """Inverted-residual downsampling: 1x1 expand (x4), 3x3 depth-wise
    stride-2, squeeze-excite, 1x1 project.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        deploy (bool): Build fused convs.
        norm_cfg (dict): The BatchNorm of every Conv-BN. Defaults to
            ``dict(type='BN')``.
        act_cfg (dict): The activation. Defaults to ``dict(type='ReLU')``.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 deploy: bool = False,
                 norm_cfg: dict = dict(type='BN'),
                 act_cfg: dict = dict(type='ReLU')) -> None:
        super().__init__()
        hidden = in_channels * 4
        self.conv1 = ConvBN(
            in_channels, hidden, deploy=deploy, norm_cfg=norm_cfg)
        self.act = build_activation(act_cfg)
        self.conv2 = ConvBN(
            hidden,
            hidden,
            3,
            stride=2,
            groups=hidden,
            deploy=deploy,
            norm_cfg=norm_cfg)
        # reduction 0.25, rounded to a multiple of 8 by the official model:
        # hidden / 4 is in_channels, which EfficientViT keeps a multiple of 8
        self.se = SqueezeExcite(hidden, in_channels, act_cfg)
        self.conv3 = ConvBN(
            hidden, out_channels, deploy=deploy, norm_cfg=norm_cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.conv2(self.act(self.conv1(x))))
        return self.conv3(self.se(x))


def relative_offset_index(window_size: int) -> torch.Tensor:
    """Index of the absolute offset ``(|dy|, |dx|)`` between every pair of
    tokens of a ``window_size`` x ``window_size`` window, as
    ``|dy| * window_size + |dx|``; shape ``(N, N)`` with ``N = ws**2``."""
    coords = torch.stack(
        torch.meshgrid(
            torch.arange(window_size),
            torch.arange(window_size),
            indexing='ij')).flatten(1)
    offsets = (coords[:, :, None] - coords[:, None, :]).abs()
    return offsets[0] * window_size + offsets[1]


def to_tokens(x: torch.Tensor) -> torch.Tensor:
    """``(B, C, H, W)`` -> ``(B, H*W, C)``; a view for channels-last maps."""
    return x.permute(0, 2, 3, 1).flatten(1, 2)


def from_tokens(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """``(B, H*W, C)`` -> a channels-last ``(B, C, H, W)`` view."""
    return x.unflatten(1, (height, width)).permute(0, 3, 1, 2)


class CascadedGroupAttention(nn.Module):
    """Cascaded group attention on one window.

    The input channels are split into one chunk per head; head ``i`` attends
    over chunk ``i`` plus the output of head ``i - 1``. Each head makes q, k
    and v with a 1x1 Conv-BN, refines q with a depth-wise Conv-BN, and adds a
    learned bias indexed by the absolute token offset to the attention logits.

    Attention runs on token-major views of channels-last maps, so that no
    transposes are copied.

    Args:
        channels (int): Input and output channels.
        key_dim (int): Channels of q and k per head.
        num_heads (int): Number of heads; must divide ``channels``.
        attn_ratio (float): Ratio of v channels to ``key_dim``.
        window_size (int): Side of the (square) window attended over.
        kernels (Sequence[int]): Depth-wise q kernel of each head.
        deploy (bool): Build fused convs.
        norm_cfg (dict): The BatchNorm of every Conv-BN. Defaults to
            ``dict(type='BN')``.
        act_cfg (dict): The activation before the projection. Defaults to ``dict(type='ReLU')``.
    """

    def __init__(self,
                 channels: int,
                 key_dim: int,
                 num_heads: int,
                 attn_ratio: float,
                 window_size: int,
                 kernels: Sequence[int],
                 deploy: bool = False,
                 norm_cfg: dict = dict(type='BN'),
                 act_cfg: dict = dict(type='ReLU')) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.key_dim = key_dim
        self.value_dim = int(attn_ratio * key_dim)
        self.scale = key_dim**-0.5
        self.window_size = window_size
        head_in = channels // num_heads
        self.qkvs = nn.ModuleList(
            ConvBN(
                head_in,
                2 * key_dim + self.value_dim,
                deploy=deploy,
                norm_cfg=norm_cfg) for _ in range(num_heads))
        self.q_dws = nn.ModuleList(
            ConvBN(
                key_dim,
                key_dim,
                k,
                groups=key_dim,
                deploy=deploy,
                norm_cfg=norm_cfg) for k in kernels[:num_heads])
        self.proj = nn.Sequential(
            build_activation(act_cfg),
            ConvBN(
                self.value_dim * num_heads,
                channels,
                bn_weight_init=0.,
                deploy=deploy,
                norm_cfg=norm_cfg))
        self.attention_biases = nn.Parameter(
            torch.zeros(num_heads, window_size * window_size))
        self.register_buffer(
            'attention_bias_idxs',
            relative_offset_index(window_size),
            persistent=False)

    def attention_bias(self) -> torch.Tensor:
        """The ``(heads, N, N)`` bias added to the attention logits (an
        ``index_select``: several times cheaper than advanced indexing)."""
        tokens = self.window_size**2
        return self.attention_biases.index_select(
            1, self.attention_bias_idxs.view(-1)).view(-1, tokens, tokens)

    def _attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                bias: torch.Tensor) -> torch.Tensor:
        """Softmax attention of one head; maps in, a map out (channels-last
        in eager mode)."""
        if is_tracing(q):
            # Exported graphs hold NCHW maps: channel-major products need
            # no transposed copies of them.
            shape = v.shape
            q, k, v = q.flatten(2), k.flatten(2), v.flatten(2)
            attn = torch.baddbmm(
                bias, q.transpose(1, 2), k, alpha=self.scale).softmax(dim=-1)
            return (v @ attn.transpose(1, 2)).view(shape)
        height, width = q.shape[2:]
        attn = torch.baddbmm(
            bias, to_tokens(q), to_tokens(k).transpose(1, 2),
            alpha=self.scale).softmax(dim=-1)
        return from_tokens(attn @ to_tokens(v), height, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Attend within ``x`` of shape ``(B, C, ws, ws)``."""
        bias = self.attention_bias()
        chunks = x.chunk(self.num_heads, dim=1)
        head_outputs = []
        feat = chunks[0]
        for i, (qkv, q_dw) in enumerate(zip(self.qkvs, self.q_dws)):
            if i > 0:
                feat = feat + chunks[i]
            q, k, v = qkv(feat).split(
                [self.key_dim, self.key_dim, self.value_dim], dim=1)
            feat = self._attend(q_dw(q), k, v, bias[i])
            head_outputs.append(feat)
        return self.proj(torch.cat(head_outputs, dim=1))


class LocalWindowAttention(nn.Module):
    """Cascaded group attention inside non-overlapping windows.

    Maps of any size are zero-padded at the bottom and right to a multiple of
    the window, split into windows, attended and cropped back; padded tokens
    take part in attention, as in the official model. A map that already is
    exactly one window is attended directly. The general path gives the same
    result and is always taken while a graph is recorded (see
    :func:`is_tracing`), so that the graph is right at every input size,
    unless ``static_trace`` is set.

    Args:
        attn (CascadedGroupAttention): The attention applied to each window;
            its ``window_size`` is the window side.

    Attributes:
        static_trace (bool): A graph being traced is for the example's input
            size only (a static export; set by :mod:`evit_mm.deploy`), so
            the one-window shortcut may be recorded. Defaults to False.
    """

    def __init__(self, attn: CascadedGroupAttention) -> None:
        super().__init__()
        self.window_size = attn.window_size
        self.attn = attn
        self.static_trace = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ws = self.window_size
        tracing = is_tracing(x)
        batch, channels, height, width = x.shape
        if (self.static_trace or not tracing) and height == ws and \
                width == ws:
            return self.attn(x)
        pad_b = (ws - height % ws) % ws
        pad_r = (ws - width % ws) % ws
        x = x.permute(0, 2, 3, 1)
        if tracing or pad_b or pad_r:
            x = F.pad(x, (0, 0, 0, pad_r, 0, pad_b))
        rows, cols = (height + pad_b) // ws, (width + pad_r) // ws
        windows = x.view(batch, rows, ws, cols, ws, channels).transpose(
            2, 3).reshape(batch * rows * cols, ws, ws, channels)
        windows = self.attn(windows.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        x = windows.reshape(batch, rows, cols, ws, ws, channels).transpose(
            2, 3).reshape(batch, rows * ws, cols * ws, channels)
        return x[:, :height, :width].permute(0, 3, 1, 2).contiguous(
            memory_format=torch.channels_last)


class EfficientViTBlock(nn.Module):
    """The sandwich block: depth-wise conv, FFN, local window cascaded group
    attention, depth-wise conv, FFN, each residual.

    Args:
        channels (int): Channels.
        key_dim (int): Channels of q and k per head.
        num_heads (int): Number of heads.
        window_size (int): Attention window side.
        kernels (Sequence[int]): Depth-wise q kernel of each head.
        drop_path (float): Stochastic depth rate of every branch.
        deploy (bool): Build fused convs.
        norm_cfg (dict): The BatchNorm of every Conv-BN. Defaults to
            ``dict(type='BN')``.
        act_cfg (dict): The activation. Defaults to ``dict(type='ReLU')``.
    """

    def __init__(self,
                 channels: int,
                 key_dim: int,
                 num_heads: int,
                 window_size: int,
                 kernels: Sequence[int],
                 drop_path: float = 0.,
                 deploy: bool = False,
                 norm_cfg: dict = dict(type='BN'),
                 act_cfg: dict = dict(type='ReLU')) -> None:
        super().__init__()
        attn_ratio = channels / (key_dim * num_heads)
        self.dw0 = depthwise_residual(channels, drop_path, deploy, norm_cfg)
        self.ffn0 = ffn_residual(channels, drop_path, deploy, norm_cfg,
                                 act_cfg)
        self.mixer = Residual(
            LocalWindowAttention(
                CascadedGroupAttention(channels, key_dim, num_heads,
                                       attn_ratio, window_size, kernels,
                                       deploy, norm_cfg, act_cfg)), drop_path)
        self.dw1 = depthwise_residual(channels, drop_path, deploy, norm_cfg)
        self.ffn1 = ffn_residual(channels, drop_path, deploy, norm_cfg,
                                 act_cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ffn1(self.dw1(self.mixer(self.ffn0(self.dw0(x)))))


class StageDownsample(nn.Module):
    """Between stages: residual dw + FFN at the old width, patch merging
    (stride 2), residual dw + FFN at the new width.

    Args:
        in_channels (int): Channels of the previous stage.
        out_channels (int): Channels of this stage.
        drop_path (float): Stochastic depth rate of the residual branches.
        deploy (bool): Build fused convs.
        norm_cfg (dict): The BatchNorm of every Conv-BN. Defaults to
            ``dict(type='BN')``.
        act_cfg (dict): The activation. Defaults to ``dict(type='ReLU')``.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 drop_path: float = 0.,
                 deploy: bool = False,
                 norm_cfg: dict = dict(type='BN'),
                 act_cfg: dict = dict(type='ReLU')) -> None:
        super().__init__()
        self.pre = nn.Sequential(
            depthwise_residual(in_channels, drop_path, deploy, norm_cfg),
            ffn_residual(in_channels, drop_path, deploy, norm_cfg, act_cfg))
        self.merge = PatchMerging(in_channels, out_channels, deploy,
                                  norm_cfg, act_cfg)
        self.post = nn.Sequential(
            depthwise_residual(out_channels, drop_path, deploy, norm_cfg),
            ffn_residual(out_channels, drop_path, deploy, norm_cfg, act_cfg))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.post(self.merge(self.pre(x)))


class PatchEmbed(nn.Sequential):
    """Four 3x3 stride-2 Conv-BN layers (widths dim/8, dim/4, dim/2, dim)
    with activations in between: an overall stride of 16.

    Args:
        in_channels (int): Image channels.
        embed_dim (int): Output channels.
        deploy (bool): Build fused convs.
        norm_cfg (dict): The BatchNorm of every Conv-BN. Defaults to
            ``dict(type='BN')``.
        act_cfg (dict): The activation. Defaults to ``dict(type='ReLU')``.
    """

    def __init__(self,
                 in_channels: int,
                 embed_dim: int,
                 deploy: bool = False,
                 norm_cfg: dict = dict(type='BN'),
                 act_cfg: dict = dict(type='ReLU')) -> None:
        widths = [embed_dim // 8, embed_dim // 4, embed_dim // 2, embed_dim]
        layers = []
        for i, width in enumerate(widths):
            if i > 0:
                layers.append(build_activation(act_cfg))
            layers.append(
                ConvBN(
                    in_channels,
                    width,
                    3,
                    stride=2,
                    deploy=deploy,
                    norm_cfg=norm_cfg))
            in_channels = width
        super().__init__(*layers)
        self.map_channels = {4: embed_dim // 4, 8: embed_dim // 2}

    def forward_with_maps(
            self, x: torch.Tensor, out_strides: Sequence[int]
    ) -> Tuple[torch.Tensor, List[torch.Tensor]]:
        """The embedding and, finest first, its intermediate activations at
        ``out_strides`` (a subset of 4 and 8): the ReLU outputs that the next
        conv consumes, so no extra computation.

        Args:
            x (Tensor): The image batch.
            out_strides (Sequence[int]): Strides of the maps to return.

        Returns:
            tuple: The stride-16 embedding and the list of requested maps.
        """
        maps, stride = [], 1
        for layer in self:
            x = layer(x)
            if isinstance(layer, ConvBN):
                stride *= 2
            elif stride in out_strides:
                maps.append(x)
        return x, maps


def fuse_conv_bn(module: nn.Module) -> None:
    """Fuse every Conv-BN and BN-Linear inside ``module`` in place."""
    for child in list(module.modules()):
        if isinstance(child, (ConvBN, BNLinear)):
            child.switch_to_deploy()


def class_logits(feat: torch.Tensor,
                 classifier: nn.Module,
                 dist_classifier: Optional[nn.Module] = None
                 ) -> torch.Tensor:
    """The class logits of pooled features: ``classifier``'s, or with a
    distillation classifier the mean of both, as the official model
    predicts at test time.

    Args:
        feat (Tensor): ``(N, C)`` pooled features.
        classifier (nn.Module): The class classifier.
        dist_classifier (nn.Module, optional): The distillation classifier.
    """
    logits = classifier(feat)
    if dist_classifier is not None:
        logits = (logits + dist_classifier(feat)) / 2
    return logits
