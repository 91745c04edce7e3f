"""EfficientNet-B0 (Tan and Le, 2019), its stages given as data (`StageArgs`).

Names: `stem` (3x3 stride-2 conv-norm-act), `stages.{i}.blocks.{j}` (MBConv: `conv_pw`,
`conv_dw`, `se`, `conv_pwl`, `drop_path`; or FusedMBConv), `head.conv` (1x1 to 1280),
`head.fc`. Parameter counts equal torchvision's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from torch import nn

from geovision.errors import ConfigError
from geovision.models.base import Backbone, Stage, classifier_head, stage_features
from geovision.models.blocks import FusedMBConv, MBConv
from geovision.models.init import init_model
from geovision.models.layers import ConvNormAct, LayerSpec, make_divisible
from geovision.models.registry import CLASSIFICATION, register_model

FIRST_CONV, CLASSIFIER = "stem.conv", "head.fc"
BLOCKS = {"mbconv": MBConv, "fused": FusedMBConv}


@dataclass(frozen=True)
class StageArgs:
    """One stage: `num_blocks` blocks of `block`, the first with `stride`."""

    block: str  # "mbconv" or "fused"
    expand_ratio: float
    kernel_size: int
    stride: int
    out_channels: int
    num_blocks: int
    se_ratio: float = 0.25


B0 = (
    StageArgs("mbconv", 1, 3, 1, 16, 1),
    StageArgs("mbconv", 6, 3, 2, 24, 2),
    StageArgs("mbconv", 6, 5, 2, 40, 2),
    StageArgs("mbconv", 6, 3, 2, 80, 3),
    StageArgs("mbconv", 6, 5, 1, 112, 3),
    StageArgs("mbconv", 6, 5, 2, 192, 4),
    StageArgs("mbconv", 6, 3, 1, 320, 1),
)


class EfficientNet(Backbone):
    """Stages from `stage_args`, scaled by `width_mult` (channels, rounded to multiples of 8)
    and `depth_mult` (blocks, rounded up). `drop_path_rate` rises linearly over the blocks,
    applied where a block has a residual."""

    def __init__(self, stage_args: Sequence[StageArgs] = B0, *, in_channels: int = 3,
                 num_classes: int = 1000, stem_width: int = 32, head_width: int = 1280,
                 width_mult: float = 1.0, depth_mult: float = 1.0, norm: LayerSpec = "batch",
                 act: LayerSpec = "silu", drop_path_rate: float = 0.2,
                 drop_rate: float = 0.2) -> None:
        super().__init__()
        unknown = {a.block for a in stage_args} - set(BLOCKS)
        if unknown:
            raise ConfigError(f"Unknown EfficientNet blocks {sorted(unknown)}; use "
                              f"{', '.join(BLOCKS)}.")
        channels = stem_channels = make_divisible(stem_width * width_mult)
        self.stem = ConvNormAct(in_channels, channels, 3, stride=2, norm=norm, act=act)
        repeats = [math.ceil(a.num_blocks * depth_mult) for a in stage_args]
        total, index, reduction = sum(repeats), 0, 2
        stages, outs, reductions = [], [], []
        for args, num_blocks in zip(stage_args, repeats, strict=True):
            out = make_divisible(args.out_channels * width_mult)
            blocks = []
            for j in range(num_blocks):
                stride = args.stride if j == 0 else 1
                cin = channels if j == 0 else out
                residual = stride == 1 and cin == out
                blocks.append(BLOCKS[args.block](
                    cin, out, stride=stride, norm=norm, act=act,
                    drop_path=drop_path_rate * index / total if residual else 0.0,
                    expand_ratio=args.expand_ratio, kernel_size=args.kernel_size,
                    se_ratio=args.se_ratio))
                index += 1
            reduction *= args.stride
            stages.append(Stage(blocks))
            channels = out
            outs.append(out)
            reductions.append(reduction)
        self.stages = nn.ModuleList(stages)
        self.feature_info = stage_features(outs, reductions, stem=(stem_channels, 2))
        head_channels = make_divisible(head_width * max(width_mult, 1.0))
        self.head = classifier_head(
            head_channels, num_classes, drop_rate,
            conv=ConvNormAct(channels, head_channels, 1, norm=norm, act=act))


@register_model(CLASSIFICATION, forwards_to=EfficientNet, fixed=("stage_args",))
def efficientnet_b0(*, init: str = "kaiming", seed: int | None = None,
                    **kwargs: Any) -> EfficientNet:
    """EfficientNet-B0: seven MBConv stages (`B0`), 1280 head channels."""
    return init_model(EfficientNet(B0, **kwargs), init, seed=seed)
