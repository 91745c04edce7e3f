"""ResNet 18/34/50/101 (He et al., 2016; the torchvision "v1.5" form, stride on the 3x3).

Names: `stem` (7x7 conv-norm-act), `stages.{i}.pool` (the max-pool before the first stage),
`stages.{i}.blocks.{j}` (BasicBlock or Bottleneck), `head.fc`. Parameter counts equal
torchvision's for the same configuration; `geovision.models.port` maps its weights here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn

from geovision.errors import ConfigError
from geovision.models.base import Backbone, Stage, classifier_head, stage_features
from geovision.models.blocks import BasicBlock, Bottleneck
from geovision.models.init import init_model
from geovision.models.layers import ConvNormAct, LayerSpec
from geovision.models.registry import CLASSIFICATION, register_model

BLOCKS = {"basic": BasicBlock, "bottleneck": Bottleneck}
FIRST_CONV, CLASSIFIER = "stem.conv", "head.fc"


class ResNet(Backbone):
    """`layers` blocks per stage of `block` ("basic" or "bottleneck"), widths doubling per
    stage. `output_stride` 8 or 16 turns the later strides into dilation (for segmentation);
    `drop_path_rate` rises linearly from 0 over the blocks; `num_classes=0` leaves no head."""

    def __init__(self, layers: Sequence[int], block: str = "basic", *, in_channels: int = 3,
                 num_classes: int = 1000, widths: Sequence[int] = (64, 128, 256, 512),
                 stem_width: int = 64, norm: LayerSpec = "batch", act: LayerSpec = "relu",
                 drop_path_rate: float = 0.0, drop_rate: float = 0.0,
                 output_stride: int = 32) -> None:
        super().__init__()
        if block not in BLOCKS:
            raise ConfigError(f"Unknown ResNet block {block!r}; use one of {', '.join(BLOCKS)}.")
        if output_stride not in (8, 16, 32):
            raise ConfigError(f"output_stride must be 8, 16 or 32, not {output_stride}.")
        block_cls = BLOCKS[block]
        self.stem = ConvNormAct(in_channels, stem_width, 7, stride=2, norm=norm, act=act)
        channels, reduction, dilation, index, total = stem_width, 4, 1, 0, sum(layers)
        stages, outs, reductions = [], [], []
        for i, (num_blocks, width) in enumerate(zip(layers, widths, strict=True)):
            out = width * block_cls.expansion
            stride = 1 if i == 0 else 2
            if reduction * stride > output_stride:
                dilation, stride = dilation * stride, 1
            reduction *= stride
            blocks = []
            for j in range(num_blocks):
                blocks.append(block_cls(channels if j == 0 else out, out,
                                        stride=stride if j == 0 else 1, dilation=dilation,
                                        norm=norm, act=act,
                                        drop_path=drop_path_rate * index / max(total - 1, 1)))
                index += 1
            stages.append(Stage(blocks, pool=nn.MaxPool2d(3, 2, 1) if i == 0 else None))
            channels = out
            outs.append(out)
            reductions.append(reduction)
        self.stages = nn.ModuleList(stages)
        self.feature_info = stage_features(outs, reductions, stem=(stem_width, 2))
        self.head = classifier_head(channels, num_classes, drop_rate)


FIXED = ("layers", "block")


def _build(layers: tuple[int, ...], block: str, init: str, zero_init_last: bool,
           seed: int | None, kwargs: dict[str, Any]) -> ResNet:
    model = ResNet(layers, block, **kwargs)
    return init_model(model, init, zero_init_last=zero_init_last, seed=seed)


@register_model(CLASSIFICATION, forwards_to=ResNet, fixed=FIXED)
def resnet18(*, init: str = "kaiming", zero_init_last: bool = False, seed: int | None = None,
             **kwargs: Any) -> ResNet:
    """ResNet-18: basic blocks (2, 2, 2, 2)."""
    return _build((2, 2, 2, 2), "basic", init, zero_init_last, seed, kwargs)


@register_model(CLASSIFICATION, forwards_to=ResNet, fixed=FIXED)
def resnet34(*, init: str = "kaiming", zero_init_last: bool = False, seed: int | None = None,
             **kwargs: Any) -> ResNet:
    """ResNet-34: basic blocks (3, 4, 6, 3)."""
    return _build((3, 4, 6, 3), "basic", init, zero_init_last, seed, kwargs)


@register_model(CLASSIFICATION, forwards_to=ResNet, fixed=FIXED)
def resnet50(*, init: str = "kaiming", zero_init_last: bool = False, seed: int | None = None,
             **kwargs: Any) -> ResNet:
    """ResNet-50: bottleneck blocks (3, 4, 6, 3)."""
    return _build((3, 4, 6, 3), "bottleneck", init, zero_init_last, seed, kwargs)


@register_model(CLASSIFICATION, forwards_to=ResNet, fixed=FIXED)
def resnet101(*, init: str = "kaiming", zero_init_last: bool = False, seed: int | None = None,
              **kwargs: Any) -> ResNet:
    """ResNet-101: bottleneck blocks (3, 4, 23, 3)."""
    return _build((3, 4, 23, 3), "bottleneck", init, zero_init_last, seed, kwargs)
