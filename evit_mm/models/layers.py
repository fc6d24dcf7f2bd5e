"""Building blocks of EfficientViT: fusable Conv-BN, residual branches,
feed-forward, squeeze-excite, patch merging and cascaded group attention."""
import contextlib
from typing import Iterator, List, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round ``value`` to the nearest multiple of ``divisor`` (at least one
    ``divisor``), the channel rounding EfficientViT's squeeze-excite uses."""
    return max(divisor, int(value + divisor / 2) // divisor * divisor)


# Point-wise convs with fewer multiply-accumulates than this run as a matrix
# product on the token view: oneDNN's fixed cost per convolution call (tens
# of microseconds on CPU) dominates such small layers. With one thread the
# cost is lower and oneDNN wins sooner.
SMALL_POINTWISE_MACS = 2**22
SMALL_POINTWISE_MACS_ONE_THREAD = 2**20


class ConvBN(nn.Module):
    """A bias-free convolution followed by BatchNorm, fusable into one conv.

    Small 1x1 convolutions are computed as a matrix product over the tokens
    of the (channels-last) map, which gives the same result with less
    per-call overhead than a convolution kernel.

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
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 kernel_size: int = 1,
                 stride: int = 1,
                 groups: int = 1,
                 bn_weight_init: float = 1.,
                 deploy: bool = False) -> None:
        super().__init__()
        self.conv = nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            stride,
            padding=kernel_size // 2,
            groups=groups,
            bias=deploy)
        if deploy:
            self.bn = nn.Identity()
        else:
            self.bn = nn.BatchNorm2d(out_channels)
            nn.init.constant_(self.bn.weight, bn_weight_init)
            nn.init.zeros_(self.bn.bias)

        self.pointwise = kernel_size == 1 and stride == 1 and groups == 1

    @property
    def fused(self) -> bool:
        return isinstance(self.bn, nn.Identity)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pointwise and not torch.jit.is_tracing() and x.numel(
        ) * self.conv.out_channels < (SMALL_POINTWISE_MACS if
                                      torch.get_num_threads() > 1 else
                                      SMALL_POINTWISE_MACS_ONE_THREAD):
            out = F.linear(
                x.permute(0, 2, 3, 1), self.conv.weight.flatten(1),
                self.conv.bias).permute(0, 3, 1, 2)
        else:
            # F.conv2d, not self.conv(x): no module-call overhead, which
            # matters at batch 1 where most layers take microseconds
            conv = self.conv
            out = F.conv2d(x, conv.weight, conv.bias, conv.stride,
                           conv.padding, conv.dilation, conv.groups)
        return out if self.fused else self.bn(out)

    @torch.no_grad()
    def switch_to_deploy(self) -> None:
        """Fold the BN statistics and affine parameters into the conv."""
        if self.fused:
            return
        conv, bn = self.conv, self.bn
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        fused = nn.Conv2d(
            conv.in_channels,
            conv.out_channels,
            conv.kernel_size,
            conv.stride,
            conv.padding,
            groups=conv.groups,
            bias=True).to(conv.weight)
        fused.weight.copy_(conv.weight * scale[:, None, None, None])
        fused.bias.copy_(bn.bias - bn.running_mean * scale)
        self.conv = fused
        self.bn = nn.Identity()


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
        self.bn = nn.Identity() if deploy else nn.BatchNorm1d(in_features)
        self.linear = nn.Linear(in_features, out_features)
        nn.init.trunc_normal_(self.linear.weight, std=.02)
        nn.init.zeros_(self.linear.bias)

    @property
    def fused(self) -> bool:
        return isinstance(self.bn, nn.Identity)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.bn(x))

    @torch.no_grad()
    def switch_to_deploy(self) -> None:
        """Fold the BN into the linear layer."""
        if self.fused:
            return
        bn, linear = self.bn, self.linear
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        shift = bn.bias - bn.running_mean * scale
        fused = nn.Linear(linear.in_features, linear.out_features).to(
            linear.weight)
        fused.weight.copy_(linear.weight * scale[None, :])
        fused.bias.copy_(linear.bias + linear.weight @ shift)
        self.linear = fused
        self.bn = nn.Identity()


class DropPath(nn.Module):
    """Stochastic depth: drop a whole residual branch per sample.

    Args:
        drop_prob (float): Probability of dropping the branch.
    """

    def __init__(self, drop_prob: float = 0.) -> None:
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.drop_prob == 0.:
            return x
        keep = 1. - self.drop_prob
        mask = x.new_empty((x.shape[0], ) + (1, ) * (x.ndim - 1))
        return x * mask.bernoulli_(keep).div_(keep)

    def extra_repr(self) -> str:
        return f'drop_prob={self.drop_prob}'


class Residual(nn.Module):
    """``x + drop_path(branch(x))``. Without autograd the sum is written
    into the branch's output instead of a new tensor (unless that output
    shares memory with ``x``).

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
        if torch.is_grad_enabled() or torch.jit.is_tracing() or \
                out.untyped_storage().data_ptr() == \
                x.untyped_storage().data_ptr():
            return x + out
        return out.add_(x)


class ConvFFN(nn.Module):
    """Point-wise feed-forward: 1x1 Conv-BN, ReLU, 1x1 Conv-BN.

    Args:
        channels (int): Input and output channels.
        hidden_channels (int): Hidden channels.
        deploy (bool): Build fused convs.
    """

    def __init__(self,
                 channels: int,
                 hidden_channels: int,
                 deploy: bool = False) -> None:
        super().__init__()
        self.pw1 = ConvBN(channels, hidden_channels, deploy=deploy)
        self.act = nn.ReLU(inplace=True)
        self.pw2 = ConvBN(
            hidden_channels, channels, bn_weight_init=0., deploy=deploy)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pw2(self.act(self.pw1(x)))


def depthwise_residual(channels: int,
                       drop_path: float = 0.,
                       deploy: bool = False) -> Residual:
    """Residual 3x3 depth-wise Conv-BN (token interaction)."""
    return Residual(
        ConvBN(
            channels,
            channels,
            3,
            groups=channels,
            bn_weight_init=0.,
            deploy=deploy), drop_path)


def ffn_residual(channels: int,
                 drop_path: float = 0.,
                 deploy: bool = False) -> Residual:
    """Residual feed-forward with expansion ratio 2."""
    return Residual(ConvFFN(channels, channels * 2, deploy), drop_path)


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation with ReLU and a sigmoid gate.

    Args:
        channels (int): Input channels.
        ratio (float): Reduction ratio; the reduced width is rounded to a
            multiple of 8.
    """

    def __init__(self, channels: int, ratio: float = .25) -> None:
        super().__init__()
        reduced = make_divisible(channels * ratio, 8)
        self.fc1 = nn.Conv2d(channels, reduced, 1)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(reduced, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # the 1x1 convs act on one pooled vector per image: matrix products
        pooled = x.mean((2, 3))
        hidden = self.act(
            F.linear(pooled, self.fc1.weight.flatten(1), self.fc1.bias))
        scale = F.linear(hidden, self.fc2.weight.flatten(1), self.fc2.bias)
        return x * scale.sigmoid()[:, :, None, None]


class PatchMerging(nn.Module):
    """Inverted-residual downsampling: 1x1 expand (x4), 3x3 depth-wise
    stride-2, squeeze-excite, 1x1 project.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        deploy (bool): Build fused convs.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 deploy: bool = False) -> None:
        super().__init__()
        hidden = in_channels * 4
        self.conv1 = ConvBN(in_channels, hidden, deploy=deploy)
        self.act = nn.ReLU(inplace=True)
        self.conv2 = ConvBN(
            hidden, hidden, 3, stride=2, groups=hidden, deploy=deploy)
        self.se = SqueezeExcite(hidden, .25)
        self.conv3 = ConvBN(hidden, out_channels, deploy=deploy)

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
    """

    def __init__(self,
                 channels: int,
                 key_dim: int,
                 num_heads: int,
                 attn_ratio: float,
                 window_size: int,
                 kernels: Sequence[int],
                 deploy: bool = False) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.key_dim = key_dim
        self.value_dim = int(attn_ratio * key_dim)
        self.scale = key_dim**-0.5
        self.window_size = window_size
        head_in = channels // num_heads
        self.qkvs = nn.ModuleList(
            ConvBN(head_in, 2 * key_dim + self.value_dim, deploy=deploy)
            for _ in range(num_heads))
        self.q_dws = nn.ModuleList(
            ConvBN(key_dim, key_dim, k, groups=key_dim, deploy=deploy)
            for k in kernels[:num_heads])
        self.proj = nn.Sequential(
            nn.ReLU(inplace=True),
            ConvBN(
                self.value_dim * num_heads,
                channels,
                bn_weight_init=0.,
                deploy=deploy))
        self.attention_biases = nn.Parameter(
            torch.zeros(num_heads, window_size * window_size))
        self.register_buffer(
            'attention_bias_idxs',
            relative_offset_index(window_size),
            persistent=False)

    def attention_bias(self) -> torch.Tensor:
        """The ``(heads, N, N)`` bias added to the attention logits (an
        ``index_select``: several times cheaper than advanced indexing)."""
        idxs = self.attention_bias_idxs
        return self.attention_biases.index_select(1, idxs.view(-1)).view(
            -1, *idxs.shape)

    def _attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                bias: torch.Tensor) -> torch.Tensor:
        """Softmax attention of one head; maps in, a map out (channels-last
        in eager mode)."""
        if torch.jit.is_tracing():
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


_FIXED_SIZE_TRACE = False


@contextlib.contextmanager
def fixed_size_tracing() -> Iterator[None]:
    """Tracing within this context records a graph for the example's input
    size only (a static ONNX export): :class:`LocalWindowAttention` may then
    take its one-window shortcut instead of the size-independent path."""
    global _FIXED_SIZE_TRACE
    previous, _FIXED_SIZE_TRACE = _FIXED_SIZE_TRACE, True
    try:
        yield
    finally:
        _FIXED_SIZE_TRACE = previous


class LocalWindowAttention(nn.Module):
    """Cascaded group attention inside non-overlapping windows.

    Maps of any size are zero-padded at the bottom and right to a multiple of
    the window, split into windows, attended and cropped back; padded tokens
    take part in attention, as in the official model. A map that already is
    exactly one window is attended directly (the general path gives the same
    result; it is always taken while tracing, so that exported graphs are
    correct at every input size, unless :func:`fixed_size_tracing` is on).

    Args:
        channels (int): Input and output channels.
        key_dim (int): Channels of q and k per head.
        num_heads (int): Number of heads.
        attn_ratio (float): Ratio of v channels to ``key_dim``.
        window_size (int): Window side.
        kernels (Sequence[int]): Depth-wise q kernel of each head.
        deploy (bool): Build fused convs.
    """

    def __init__(self,
                 channels: int,
                 key_dim: int,
                 num_heads: int,
                 attn_ratio: float,
                 window_size: int,
                 kernels: Sequence[int],
                 deploy: bool = False) -> None:
        super().__init__()
        self.window_size = window_size
        self.attn = CascadedGroupAttention(channels, key_dim, num_heads,
                                           attn_ratio, window_size, kernels,
                                           deploy)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ws = self.window_size
        batch, channels, height, width = x.shape
        if height == ws and width == ws and (_FIXED_SIZE_TRACE or
                                             not torch.jit.is_tracing()):
            return self.attn(x)
        pad_b = (ws - height % ws) % ws
        pad_r = (ws - width % ws) % ws
        x = x.permute(0, 2, 3, 1)
        if pad_b or pad_r or torch.jit.is_tracing():
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
    """

    def __init__(self,
                 channels: int,
                 key_dim: int,
                 num_heads: int,
                 window_size: int,
                 kernels: Sequence[int],
                 drop_path: float = 0.,
                 deploy: bool = False) -> None:
        super().__init__()
        attn_ratio = channels / (key_dim * num_heads)
        self.dw0 = depthwise_residual(channels, drop_path, deploy)
        self.ffn0 = ffn_residual(channels, drop_path, deploy)
        self.mixer = Residual(
            LocalWindowAttention(channels, key_dim, num_heads, attn_ratio,
                                 window_size, kernels, deploy), drop_path)
        self.dw1 = depthwise_residual(channels, drop_path, deploy)
        self.ffn1 = ffn_residual(channels, drop_path, deploy)

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
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 drop_path: float = 0.,
                 deploy: bool = False) -> None:
        super().__init__()
        self.pre = nn.Sequential(
            depthwise_residual(in_channels, drop_path, deploy),
            ffn_residual(in_channels, drop_path, deploy))
        self.merge = PatchMerging(in_channels, out_channels, deploy)
        self.post = nn.Sequential(
            depthwise_residual(out_channels, drop_path, deploy),
            ffn_residual(out_channels, drop_path, deploy))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.post(self.merge(self.pre(x)))


class PatchEmbed(nn.Sequential):
    """Four 3x3 stride-2 Conv-BN layers (widths dim/8, dim/4, dim/2, dim)
    with ReLU in between: an overall stride of 16.

    Args:
        in_channels (int): Image channels.
        embed_dim (int): Output channels.
        deploy (bool): Build fused convs.
    """

    def __init__(self,
                 in_channels: int,
                 embed_dim: int,
                 deploy: bool = False) -> None:
        widths = [embed_dim // 8, embed_dim // 4, embed_dim // 2, embed_dim]
        layers = []
        for i, width in enumerate(widths):
            if i > 0:
                layers.append(nn.ReLU(inplace=True))
            layers.append(
                ConvBN(in_channels, width, 3, stride=2, deploy=deploy))
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
