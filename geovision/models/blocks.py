"""The blocks architectures are built from: VGG, ResNet basic and bottleneck, DenseNet layer,
block and transition, EfficientNet MBConv and fused MBConv, and a U-Net decoder block.

All take the same arguments: `stride` (2 halves the resolution; for `UpBlock`, 2 doubles it),
`dilation`, `norm` and `act` (names or classes, see `layers.get_norm` / `get_act`), `drop_path`
(stochastic depth of the residual branch; blocks without one refuse a non-zero value) and an
optional `downsample` (the shortcut's or the pooling module, built here when left None).
`resample` says what a block does to the resolution: -1 halves it, 0 keeps it, +1 doubles it.
Each call site has its own module and residual sums are not in place, so forward hooks see
every activation exactly once.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from geovision.errors import ConfigError
from geovision.models.layers import (
    ConvNormAct,
    DropPath,
    LayerSpec,
    SqueezeExcite,
    get_act,
    get_norm,
    make_divisible,
)


def _resample(stride: int) -> int:
    return -1 if stride > 1 else 0


def _no_residual(block: str, drop_path: float) -> None:
    if drop_path:
        raise ConfigError(f"{block} has no residual branch to drop; drop_path must be 0, "
                          f"not {drop_path}.")


def _shortcut(in_channels: int, out_channels: int, stride: int, norm: LayerSpec,
              downsample: nn.Module | None) -> nn.Module | None:
    """The given downsample, else a strided 1x1 conv + norm where the shape changes."""
    if downsample is not None:
        return downsample
    if stride != 1 or in_channels != out_channels:
        return ConvNormAct(in_channels, out_channels, 1, stride=stride, norm=norm, act=None)
    return None


class VGGBlock(nn.Module):
    """`num_convs` 3x3 conv-norm-act; with stride 2 it max-pools first (`downsample`).

    `conv_bias` None gives the convs a bias only without a norm; VGG's own convs keep theirs
    before batch norm (True), which ported weights need."""

    def __init__(self, in_channels: int, out_channels: int, num_convs: int = 2,
                 stride: int = 1, dilation: int = 1, norm: LayerSpec = "batch",
                 act: LayerSpec = "relu", drop_path: float = 0.0,
                 downsample: nn.Module | None = None, conv_bias: bool | None = None) -> None:
        super().__init__()
        _no_residual("VGGBlock", drop_path)
        if downsample is None and stride > 1:
            downsample = nn.MaxPool2d(stride, stride)
        self.downsample = downsample
        self.convs = nn.Sequential(*[
            ConvNormAct(in_channels if i == 0 else out_channels, out_channels, 3,
                        dilation=dilation, norm=norm, act=act, bias=conv_bias)
            for i in range(num_convs)])
        self.resample = _resample(stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.downsample is not None:
            x = self.downsample(x)
        return self.convs(x)


class BasicBlock(nn.Module):
    """ResNet's two 3x3 convs around a shortcut; the stride is on the first conv."""

    expansion = 1

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, dilation: int = 1,
                 norm: LayerSpec = "batch", act: LayerSpec = "relu", drop_path: float = 0.0,
                 downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = ConvNormAct(in_channels, out_channels, 3, stride=stride, dilation=dilation,
                                 norm=norm, act=act)
        self.conv2 = ConvNormAct(out_channels, out_channels, 3, dilation=dilation, norm=norm,
                                 act=None)
        self.downsample = _shortcut(in_channels, out_channels, stride, norm, downsample)
        self.drop_path = DropPath(drop_path)
        self.act = get_act(act)()
        self.resample = _resample(stride)

    def zero_init_last(self) -> None:
        """Start as act(shortcut): the residual branch's last norm scales to zero."""
        nn.init.zeros_(self.conv2.norm.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(self.conv1(x))  # modules run in the order they are registered
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.act(self.drop_path(out) + shortcut)


class Bottleneck(nn.Module):
    """ResNet's 1x1 reduce, 3x3 (strided, "v1.5"), 1x1 expand around a shortcut.

    `out_channels` is the block's output (4x its width for ResNet-50); `groups` and
    `base_width` give the ResNeXt / wide variants."""

    expansion = 4

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, dilation: int = 1,
                 norm: LayerSpec = "batch", act: LayerSpec = "relu", drop_path: float = 0.0,
                 downsample: nn.Module | None = None, groups: int = 1,
                 base_width: int = 64) -> None:
        super().__init__()
        width = int(out_channels // self.expansion * (base_width / 64.0)) * groups
        self.conv1 = ConvNormAct(in_channels, width, 1, norm=norm, act=act)
        self.conv2 = ConvNormAct(width, width, 3, stride=stride, dilation=dilation,
                                 groups=groups, norm=norm, act=act)
        self.conv3 = ConvNormAct(width, out_channels, 1, norm=norm, act=None)
        self.downsample = _shortcut(in_channels, out_channels, stride, norm, downsample)
        self.drop_path = DropPath(drop_path)
        self.act = get_act(act)()
        self.resample = _resample(stride)

    def zero_init_last(self) -> None:
        nn.init.zeros_(self.conv3.norm.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv3(self.conv2(self.conv1(x)))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.act(self.drop_path(out) + shortcut)


def _dense_only_stride_1(block: str, stride: int, downsample: nn.Module | None) -> None:
    if stride != 1 or downsample is not None:
        raise ConfigError(f"{block} concatenates its input with new features at the same "
                          "resolution; downsample with a Transition (stride 2) instead.")


class DenseLayer(nn.Module):
    """DenseNet's pre-activation norm-act-1x1 conv-norm-act-3x3 conv: `growth_rate` new
    channels from all the features so far. `drop_path` drops the new features per sample."""

    def __init__(self, in_channels: int, growth_rate: int = 32, bn_size: int = 4,
                 stride: int = 1, dilation: int = 1, norm: LayerSpec = "batch",
                 act: LayerSpec = "relu", drop_path: float = 0.0,
                 downsample: nn.Module | None = None) -> None:
        super().__init__()
        _dense_only_stride_1("DenseLayer", stride, downsample)
        width = bn_size * growth_rate
        self.norm1 = get_norm(norm)(in_channels)
        self.act1 = get_act(act)()
        self.conv1 = nn.Conv2d(in_channels, width, 1, bias=False)
        self.norm2 = get_norm(norm)(width)
        self.act2 = get_act(act)()
        self.conv2 = nn.Conv2d(width, growth_rate, 3, padding=dilation, dilation=dilation,
                               bias=False)
        self.drop_path = DropPath(drop_path)
        self.resample = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(self.act1(self.norm1(x)))
        return self.drop_path(self.conv2(self.act2(self.norm2(x))))


class DenseBlock(nn.Module):
    """`num_layers` DenseLayers (`layers.{k}`), each fed the concatenation of the block's
    input and every earlier layer's output; returns that concatenation."""

    def __init__(self, in_channels: int, num_layers: int, growth_rate: int = 32,
                 bn_size: int = 4, stride: int = 1, dilation: int = 1,
                 norm: LayerSpec = "batch", act: LayerSpec = "relu", drop_path: float = 0.0,
                 downsample: nn.Module | None = None) -> None:
        super().__init__()
        _dense_only_stride_1("DenseBlock", stride, downsample)
        self.layers = nn.ModuleList(
            DenseLayer(in_channels + k * growth_rate, growth_rate, bn_size, dilation=dilation,
                       norm=norm, act=act, drop_path=drop_path) for k in range(num_layers))
        self.out_channels = in_channels + num_layers * growth_rate
        self.resample = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for layer in self.layers:
            features.append(layer(torch.cat(features, 1)))
        return torch.cat(features, 1)


class Transition(nn.Module):
    """DenseNet's norm-act-1x1 conv between dense blocks, then average pooling by `stride`."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 2, dilation: int = 1,
                 norm: LayerSpec = "batch", act: LayerSpec = "relu", drop_path: float = 0.0,
                 downsample: nn.Module | None = None) -> None:
        super().__init__()
        _no_residual("Transition", drop_path)
        self.norm = get_norm(norm)(in_channels)
        self.act = get_act(act)()
        self.conv = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        if downsample is None:
            downsample = nn.AvgPool2d(stride, stride) if stride > 1 else nn.Identity()
        self.pool = downsample
        self.resample = _resample(stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.conv(self.act(self.norm(x))))


class MBConv(nn.Module):
    """EfficientNet's inverted residual: 1x1 expand (`conv_pw`, absent at ratio 1), depthwise
    k x k (`conv_dw`, strided), squeeze-excite (`se`), 1x1 project (`conv_pwl`, no act).

    The shortcut is the identity when the shape is kept, or the given `downsample`; without
    either the block has no residual and drop_path does not apply. Squeeze-excite reduces to
    `se_ratio` of the block's *input* channels, as EfficientNet does."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, dilation: int = 1,
                 norm: LayerSpec = "batch", act: LayerSpec = "silu", drop_path: float = 0.0,
                 downsample: nn.Module | None = None, expand_ratio: float = 6.0,
                 kernel_size: int = 3, se_ratio: float = 0.25) -> None:
        super().__init__()
        mid = make_divisible(in_channels * expand_ratio)
        if mid != in_channels:
            self.conv_pw = ConvNormAct(in_channels, mid, 1, norm=norm, act=act)
        self.conv_dw = ConvNormAct(mid, mid, kernel_size, stride=stride, dilation=dilation,
                                   groups=mid, norm=norm, act=act)
        if se_ratio:
            self.se = SqueezeExcite(mid, reduced=max(1, int(in_channels * se_ratio)), act=act)
        self.conv_pwl = ConvNormAct(mid, out_channels, 1, norm=norm, act=None)
        _set_residual(self, in_channels, out_channels, stride, drop_path, downsample)

    def zero_init_last(self) -> None:
        nn.init.zeros_(self.conv_pwl.norm.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv_pw(x) if hasattr(self, "conv_pw") else x
        out = self.conv_dw(out)
        if hasattr(self, "se"):
            out = self.se(out)
        return _add_residual(self, x, self.conv_pwl(out))


class FusedMBConv(nn.Module):
    """EfficientNetV2's fused inverted residual: k x k expand (`conv_exp`, strided), optional
    squeeze-excite, 1x1 project (`conv_pwl`); at ratio 1 `conv_exp` projects directly."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, dilation: int = 1,
                 norm: LayerSpec = "batch", act: LayerSpec = "silu", drop_path: float = 0.0,
                 downsample: nn.Module | None = None, expand_ratio: float = 4.0,
                 kernel_size: int = 3, se_ratio: float = 0.0) -> None:
        super().__init__()
        mid = make_divisible(in_channels * expand_ratio)
        project = expand_ratio != 1
        self.conv_exp = ConvNormAct(in_channels, mid if project else out_channels, kernel_size,
                                    stride=stride, dilation=dilation, norm=norm, act=act)
        if se_ratio:
            self.se = SqueezeExcite(mid if project else out_channels,
                                    reduced=max(1, int(in_channels * se_ratio)), act=act)
        if project:
            self.conv_pwl = ConvNormAct(mid, out_channels, 1, norm=norm, act=None)
        _set_residual(self, in_channels, out_channels, stride, drop_path, downsample)

    def zero_init_last(self) -> None:
        last = self.conv_pwl if hasattr(self, "conv_pwl") else self.conv_exp
        nn.init.zeros_(last.norm.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv_exp(x)
        if hasattr(self, "se"):
            out = self.se(out)
        if hasattr(self, "conv_pwl"):
            out = self.conv_pwl(out)
        return _add_residual(self, x, out)


def _set_residual(block: nn.Module, in_channels: int, out_channels: int, stride: int,
                  drop_path: float, downsample: nn.Module | None) -> None:
    block.has_residual = downsample is not None or (stride == 1 and in_channels == out_channels)
    if not block.has_residual:
        _no_residual(type(block).__name__ + " (stride or channels change, no downsample)",
                     drop_path)
    block.downsample = downsample
    if block.has_residual:
        block.drop_path = DropPath(drop_path)
    block.resample = _resample(stride)


def _add_residual(block: nn.Module, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    if not block.has_residual:
        return out
    shortcut = x if block.downsample is None else block.downsample(x)
    return block.drop_path(out) + shortcut


UPSAMPLING = ("nearest", "bilinear", "transposed")


class UpBlock(nn.Module):
    """U-Net decoder block: upsample by `stride` (to the skip's size when there is one),
    concatenate the skip features, two 3x3 conv-norm-act.

    `mode` is "nearest" or "bilinear" interpolation, or "transposed" (a learned 2x2
    transposed conv, `up`, keeping the channel count)."""

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int,
                 mode: str = "nearest", stride: int = 2, dilation: int = 1,
                 norm: LayerSpec = "batch", act: LayerSpec = "relu", drop_path: float = 0.0,
                 downsample: nn.Module | None = None) -> None:
        super().__init__()
        _no_residual("UpBlock", drop_path)
        if downsample is not None:
            raise ConfigError("UpBlock upsamples; it takes no downsample module.")
        if mode not in UPSAMPLING:
            raise ConfigError(f"Unknown upsampling {mode!r}; use one of {', '.join(UPSAMPLING)}.")
        self.mode = mode
        self.stride = stride
        if mode == "transposed":
            self.up = nn.ConvTranspose2d(in_channels, in_channels, stride, stride=stride)
        self.conv1 = ConvNormAct(in_channels + skip_channels, out_channels, 3,
                                 dilation=dilation, norm=norm, act=act)
        self.conv2 = ConvNormAct(out_channels, out_channels, 3, dilation=dilation, norm=norm,
                                 act=act)
        self.resample = 1 if stride > 1 else 0

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        if self.mode == "transposed":
            x = self.up(x)
        size = skip.shape[-2:] if skip is not None else None
        if self.mode != "transposed" or (size is not None and x.shape[-2:] != size):
            scale = None if size is not None else float(self.stride)
            x = F.interpolate(x, size=size, scale_factor=scale,
                              mode="bilinear" if self.mode == "bilinear" else "nearest",
                              **({"align_corners": False} if self.mode == "bilinear" else {}))
        if skip is not None:
            x = torch.cat([x, skip], 1)
        return self.conv2(self.conv1(x))


def conv_bn_relu(in_channels: int, out_channels: int, kernel_size: int = 3) -> ConvNormAct:
    """A 'same' conv + batch norm + ReLU (what the small demo models are made of)."""
    return ConvNormAct(in_channels, out_channels, kernel_size)
