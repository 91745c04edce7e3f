"""Layers the blocks are made of: conv + norm + activation, squeeze-excite, drop-path, and the
resolution of norm and activation layers given by name or class.

Every factory returns a new module per call, so no module is called at two places in a
forward: hook-based attribution (DeepLift, guided backprop) and feature extraction need that.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch
from torch import nn

from geovision.errors import ConfigError

LayerSpec = str | type[nn.Module] | Callable[..., nn.Module] | None

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "relu6": nn.ReLU6,
    "silu": nn.SiLU,
    "swish": nn.SiLU,
    "gelu": nn.GELU,
    "leaky_relu": partial(nn.LeakyReLU, 0.2),
    "elu": nn.ELU,
    "hardswish": nn.Hardswish,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "identity": nn.Identity,
}


def _group_norm(channels: int, groups: int = 32) -> nn.GroupNorm:
    """GroupNorm with `groups` groups, or the largest divisor of `channels` below it."""
    while channels % groups:
        groups -= 1
    return nn.GroupNorm(groups, channels)


NORMS: dict[str, Callable[[int], nn.Module]] = {
    "batch": nn.BatchNorm2d,
    "group": _group_norm,
    "instance": partial(nn.InstanceNorm2d, affine=True),
    "identity": lambda channels: nn.Identity(),
}


def get_act(act: LayerSpec) -> Callable[[], nn.Module]:
    """A factory of fresh activation modules: from a name in ACTIVATIONS, a module class or
    any callable returning a module; None means no activation (identity)."""
    if act is None:
        return nn.Identity
    if isinstance(act, str):
        try:
            return ACTIVATIONS[act.lower()]
        except KeyError:
            raise ConfigError(f"Unknown activation {act!r}; known: "
                              f"{', '.join(ACTIVATIONS)}, or pass a module class.") from None
    if callable(act):
        return act
    raise ConfigError(f"Activation must be a name, a module class or None, not {act!r}.")


def get_norm(norm: LayerSpec) -> Callable[[int], nn.Module]:
    """A factory `channels -> norm module`: from a name in NORMS, a class taking the channel
    count, or any such callable; None means no normalisation (identity)."""
    if norm is None:
        return NORMS["identity"]
    if isinstance(norm, str):
        try:
            return NORMS[norm.lower()]
        except KeyError:
            raise ConfigError(f"Unknown norm {norm!r}; known: {', '.join(NORMS)}, or pass a "
                              "class taking the channel count.") from None
    if callable(norm):
        return norm
    raise ConfigError(f"Norm must be a name, a class or None, not {norm!r}.")


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round a channel count to a multiple of `divisor`, never more than 10% below it."""
    min_value = min_value or divisor
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


class ConvNormAct(nn.Module):
    """Conv2d -> norm -> activation, as the children `conv`, `norm`, `act`.

    Padding keeps the size at stride 1 (`dilation * (kernel - 1) // 2`); the conv has a bias
    only when there is no norm to absorb it. `act=None` makes `act` an identity, for the last
    conv of a residual branch."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3,
                 stride: int = 1, dilation: int = 1, groups: int = 1,
                 norm: LayerSpec = "batch", act: LayerSpec = "relu",
                 bias: bool | None = None) -> None:
        super().__init__()
        padding = dilation * (kernel_size - 1) // 2
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride,
                              padding=padding, dilation=dilation, groups=groups,
                              bias=norm is None if bias is None else bias)
        self.norm = get_norm(norm)(out_channels)
        self.act = get_act(act)()
        self.resample = -1 if stride > 1 else 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.norm(self.conv(x)))


class SqueezeExcite(nn.Module):
    """Channel attention: global pool -> 1x1 reduce -> act -> 1x1 expand -> gate, times x.

    `reduced` channels default to `rd_ratio * channels`; EfficientNet passes a quarter of the
    block's input channels instead."""

    def __init__(self, channels: int, reduced: int | None = None, rd_ratio: float = 0.25,
                 act: LayerSpec = "relu", gate: LayerSpec = "sigmoid") -> None:
        super().__init__()
        reduced = reduced or max(1, round(channels * rd_ratio))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, reduced, 1)
        self.act = get_act(act)()
        self.fc2 = nn.Conv2d(reduced, channels, 1)
        self.gate = get_act(gate)()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(self.fc2(self.act(self.fc1(self.pool(x)))))


def drop_path(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Zero whole samples of a residual branch with probability `p`, scaling the kept ones by
    1 / (1 - p) so the expectation is unchanged (stochastic depth, per sample)."""
    if p == 0.0 or not training:
        return x
    keep = 1.0 - p
    mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
    return x * mask / keep


class DropPath(nn.Module):
    """`drop_path` as a module, so that it has a name and shows in the model's print."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ConfigError(f"drop_path {p} must be in [0, 1).")
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return drop_path(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"
