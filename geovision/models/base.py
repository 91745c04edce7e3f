"""The shape every architecture shares: `stem` -> `stages.{i}` (each `blocks.{j}`) -> `head`.

That one naming scheme is what attribution hooks, feature extraction, freezing and ported
weights address. An encoder lists its features in `feature_info` (channels, reduction from the
input, module name) and `forward_features` returns exactly those, shallow to deep; the U-Net
decoder is built from them.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from geovision.errors import DataError


@dataclass(frozen=True)
class FeatureInfo:
    """One feature map an encoder offers: its channels, its reduction (input size over its
    size) and the module whose output it is."""

    channels: int
    reduction: int
    module: str


class Stage(nn.Module):
    """A run of blocks at one resolution, `blocks.{j}`; the first block (or `pool`, run before
    the blocks) may change it."""

    def __init__(self, blocks: Sequence[nn.Module], pool: nn.Module | None = None) -> None:
        super().__init__()
        self.pool = pool
        self.blocks = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pool is not None:
            x = self.pool(x)
        return self.blocks(x)


class Backbone(nn.Module):
    """stem (optional) -> stages -> head. Subclasses build the three and `feature_info`."""

    stem: nn.Module | None
    stages: nn.ModuleList
    head: nn.Module
    feature_info: list[FeatureInfo]

    @property
    def output_stride(self) -> int:
        return max(f.reduction for f in self.feature_info)

    def check_input(self, x: torch.Tensor) -> None:
        stride = self.output_stride
        if x.shape[-1] % stride or x.shape[-2] % stride:
            raise DataError(f"{type(self).__name__} needs height and width divisible by "
                            f"{stride}, got {tuple(x.shape[-2:])}; tile or pad the images to a "
                            f"multiple of {stride}.")

    def forward_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The feature maps `feature_info` lists, in its order."""
        wanted = {f.module for f in self.feature_info}
        features = []
        if self.stem is not None:
            x = self.stem(x)
            if "stem" in wanted:
                features.append(x)
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if f"stages.{i}" in wanted:
                features.append(x)
        return features

    def forward_body(self, x: torch.Tensor) -> torch.Tensor:
        """The last stage's output (what the head reads)."""
        if self.stem is not None:
            x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_body(x))


def classifier_head(channels: int, num_classes: int, drop_rate: float = 0.0,
                    **before: nn.Module) -> nn.Module:
    """`before` modules (by name), global average pool, dropout, `fc`; with num_classes 0 the
    head is an identity and the model returns its last feature map (an encoder)."""
    if not num_classes:
        return nn.Identity()
    return nn.Sequential(OrderedDict([
        *before.items(), ("pool", nn.AdaptiveAvgPool2d(1)), ("flatten", nn.Flatten(1)),
        ("drop", nn.Dropout(drop_rate)), ("fc", nn.Linear(channels, num_classes))]))


def stage_features(channels: Sequence[int], reductions: Sequence[int],
                   stem: tuple[int, int] | None = None) -> list[FeatureInfo]:
    """feature_info of the stem (channels, reduction) and of every stage but those followed
    by another at the same reduction: one feature per resolution, the deepest there is."""
    info = [FeatureInfo(stem[0], stem[1], "stem")] if stem else []
    for i, (c, r) in enumerate(zip(channels, reductions, strict=True)):
        if i + 1 < len(reductions) and reductions[i + 1] == r:
            continue
        info.append(FeatureInfo(c, r, f"stages.{i}"))
    if stem and len(info) > 1 and info[1].reduction == stem[1]:
        info.pop(0)  # a first stage at the stem's resolution supersedes it
    return info
