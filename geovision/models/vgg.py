"""VGG 11/16, with or without batch norm (Simonyan and Zisserman, 2015).

Names: `stages.{i}.blocks.0` (a VGGBlock: `downsample` max-pool from stage 1 on, then
`convs.{k}`), and the torchvision head: `head.pool` (the last max-pool), `head.avgpool` (to
7x7), `head.fc1`, `head.fc2`, `head.fc`. VGG has no stem. Parameter counts equal
torchvision's.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from torch import nn

from geovision.models.base import Backbone, Stage, stage_features
from geovision.models.blocks import VGGBlock
from geovision.models.init import init_model
from geovision.models.layers import LayerSpec, get_act
from geovision.models.registry import CLASSIFICATION, register_model

FIRST_CONV, CLASSIFIER = "stages.0.blocks.0.convs.0.conv", "head.fc"
WIDTHS = (64, 128, 256, 512, 512)


class VGG(Backbone):
    """`convs` 3x3 convs per stage; each stage after the first halves the resolution first."""

    def __init__(self, convs: Sequence[int], *, in_channels: int = 3, num_classes: int = 1000,
                 widths: Sequence[int] = WIDTHS, norm: LayerSpec = None, act: LayerSpec = "relu",
                 hidden: int = 4096, drop_rate: float = 0.5) -> None:
        super().__init__()
        self.stem = None
        stages, channels = [], in_channels
        for i, (num_convs, width) in enumerate(zip(convs, widths, strict=True)):
            stages.append(Stage([VGGBlock(channels, width, num_convs, stride=1 if i == 0 else 2,
                                          norm=norm, act=act, conv_bias=True)]))
            channels = width
        self.stages = nn.ModuleList(stages)
        self.feature_info = stage_features(widths, [2**i for i in range(len(widths))])
        act_layer = get_act(act)
        self.head = nn.Sequential(OrderedDict([
            ("pool", nn.MaxPool2d(2, 2)), ("avgpool", nn.AdaptiveAvgPool2d(7)),
            ("flatten", nn.Flatten(1)),
            ("fc1", nn.Linear(channels * 49, hidden)), ("act1", act_layer()),
            ("drop1", nn.Dropout(drop_rate)),
            ("fc2", nn.Linear(hidden, hidden)), ("act2", act_layer()),
            ("drop2", nn.Dropout(drop_rate)),
            ("fc", nn.Linear(hidden, num_classes))])) if num_classes else nn.Identity()


FIXED = ("convs", "norm")


def _build(convs: tuple[int, ...], norm: LayerSpec, init: str, seed: int | None,
           kwargs: dict[str, Any]) -> VGG:
    return init_model(VGG(convs, norm=norm, **kwargs), init, seed=seed)


@register_model(CLASSIFICATION, forwards_to=VGG, fixed=FIXED)
def vgg11(*, init: str = "kaiming", seed: int | None = None, **kwargs: Any) -> VGG:
    """VGG-11 (configuration A), no batch norm."""
    return _build((1, 1, 2, 2, 2), None, init, seed, kwargs)


@register_model(CLASSIFICATION, forwards_to=VGG, fixed=FIXED)
def vgg11_bn(*, init: str = "kaiming", seed: int | None = None, **kwargs: Any) -> VGG:
    """VGG-11 (configuration A) with batch norm after every conv."""
    return _build((1, 1, 2, 2, 2), "batch", init, seed, kwargs)


@register_model(CLASSIFICATION, forwards_to=VGG, fixed=FIXED)
def vgg16(*, init: str = "kaiming", seed: int | None = None, **kwargs: Any) -> VGG:
    """VGG-16 (configuration D), no batch norm."""
    return _build((2, 2, 3, 3, 3), None, init, seed, kwargs)


@register_model(CLASSIFICATION, forwards_to=VGG, fixed=FIXED)
def vgg16_bn(*, init: str = "kaiming", seed: int | None = None, **kwargs: Any) -> VGG:
    """VGG-16 (configuration D) with batch norm after every conv."""
    return _build((2, 2, 3, 3, 3), "batch", init, seed, kwargs)
