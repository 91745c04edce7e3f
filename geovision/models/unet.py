"""U-Net (Ronneberger et al., 2015) on any registered encoder that has `feature_info`.

The encoder's `stem` and `stages` become the U-Net's own (same names, so ported encoder weights
load as they are); `decoder.blocks.{i}` are UpBlocks from the deepest feature back to full
resolution, each concatenating the encoder feature at its resolution; `head.conv` gives the
class logits. The decoder follows segmentation-models-pytorch's U-Net: decoder channels
(256, 128, 64, 32, 16), nearest upsampling, two conv-norm-ReLU per block, a 3x3 head.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from geovision.errors import ConfigError
from geovision.models.base import Backbone, FeatureInfo
from geovision.models.blocks import UpBlock
from geovision.models.init import init_model
from geovision.models.layers import LayerSpec
from geovision.models.registry import SEGMENTATION, model_entry, register_model
from geovision.models.weights import LOADED_ATTRIBUTE, WeightsSpec, load_weights

DECODER_CHANNELS = (256, 128, 64, 32, 16)


class UNetDecoder(nn.Module):
    """One UpBlock per halving of the deepest feature's reduction (`blocks.{i}`); block i
    takes the encoder feature at its output resolution as skip, when there is one."""

    def __init__(self, feature_info: Sequence[FeatureInfo],
                 channels: Sequence[int] | None = None, mode: str = "nearest",
                 norm: LayerSpec = "batch", act: LayerSpec = "relu") -> None:
        super().__init__()
        deepest = feature_info[-1]
        count = round(math.log2(deepest.reduction))
        channels = tuple(channels) if channels is not None else DECODER_CHANNELS[-count:]
        if len(channels) != count:
            raise ConfigError(f"decoder_channels needs {count} entries (the encoder's deepest "
                              f"feature is at 1/{deepest.reduction}), got {len(channels)}.")
        by_reduction = {f.reduction: i for i, f in enumerate(feature_info)}
        self.skips: list[int | None] = []
        blocks, cin, reduction = [], deepest.channels, deepest.reduction
        for out in channels:
            reduction //= 2
            skip = by_reduction.get(reduction)
            self.skips.append(skip)
            blocks.append(UpBlock(cin, feature_info[skip].channels if skip is not None else 0,
                                  out, mode=mode, norm=norm, act=act))
            cin = out
        self.blocks = nn.ModuleList(blocks)
        self.out_channels = cin

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        x = features[-1]
        for block, skip in zip(self.blocks, self.skips, strict=True):
            x = block(x, features[skip] if skip is not None else None)
        return x


class UNet(Backbone):
    """`encoder` (a registered model name) with `encoder_kwargs`, optionally loaded from
    `encoder_weights` (a WeightsSpec or path, adapted to `in_channels`), and the decoder."""

    def __init__(self, encoder: str = "resnet34", *, in_channels: int = 3,
                 num_classes: int = 2, decoder_channels: Sequence[int] | None = None,
                 upsample: str = "nearest", norm: LayerSpec = "batch", act: LayerSpec = "relu",
                 encoder_kwargs: dict[str, Any] | None = None,
                 encoder_weights: WeightsSpec | str | os.PathLike | None = None) -> None:
        super().__init__()
        entry = model_entry(encoder)
        built = entry.builder(in_channels=in_channels, num_classes=0,
                              **(encoder_kwargs or {}))
        if not isinstance(built, Backbone):
            raise ConfigError(f"Model {encoder!r} has no feature_info, so it cannot be a U-Net "
                              "encoder; use one of the classification architectures.")
        if encoder_weights is not None:
            load_weights(built, encoder_weights)
        self.encoder_name = encoder
        self.stem = built.stem
        self.stages = built.stages
        self.feature_info = list(built.feature_info)
        self.decoder = UNetDecoder(self.feature_info, decoder_channels, upsample, norm, act)
        self.head = nn.Sequential()
        self.head.add_module("conv", nn.Conv2d(self.decoder.out_channels, num_classes, 3,
                                               padding=1))
        setattr(self, LOADED_ATTRIBUTE, getattr(built, LOADED_ATTRIBUTE, frozenset()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        return self.head(self.decoder(self.forward_features(x)))


@register_model(SEGMENTATION, forwards_to=UNet)
def unet(*, init: str = "kaiming", seed: int | None = None, **kwargs: Any) -> UNet:
    """U-Net on a registered encoder (default resnet34). The init scheme applies to the
    decoder and head, and to the encoder where no encoder_weights were loaded."""
    return init_model(UNet(**kwargs), init, seed=seed)
