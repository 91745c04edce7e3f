"""DenseNet-121 (Huang et al., 2017).

Names: `stem` (7x7 conv-norm-act), `stages.0.pool`, `stages.{i}.blocks.{j}`: a Transition
(from stage 1 on) then a DenseBlock (`layers.{k}`), `head.norm`, `head.act`, `head.fc`.
Parameter counts equal torchvision's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn

from geovision.models.base import Backbone, Stage, classifier_head, stage_features
from geovision.models.blocks import DenseBlock, Transition
from geovision.models.init import init_model
from geovision.models.layers import ConvNormAct, LayerSpec, get_act, get_norm
from geovision.models.registry import CLASSIFICATION, register_model

FIRST_CONV, CLASSIFIER = "stem.conv", "head.fc"


class DenseNet(Backbone):
    """Dense blocks of `block_config` layers, transitions halving channels and resolution."""

    def __init__(self, block_config: Sequence[int] = (6, 12, 24, 16), *, in_channels: int = 3,
                 num_classes: int = 1000, growth_rate: int = 32, stem_width: int = 64,
                 bn_size: int = 4, norm: LayerSpec = "batch", act: LayerSpec = "relu",
                 drop_path_rate: float = 0.0, drop_rate: float = 0.0) -> None:
        super().__init__()
        self.stem = ConvNormAct(in_channels, stem_width, 7, stride=2, norm=norm, act=act)
        channels, stages, outs = stem_width, [], []
        for i, num_layers in enumerate(block_config):
            blocks: list[nn.Module] = []
            if i > 0:
                blocks.append(Transition(channels, channels // 2, norm=norm, act=act))
                channels //= 2
            dense = DenseBlock(channels, num_layers, growth_rate, bn_size, norm=norm, act=act,
                               drop_path=drop_path_rate)
            blocks.append(dense)
            channels = dense.out_channels
            stages.append(Stage(blocks, pool=nn.MaxPool2d(3, 2, 1) if i == 0 else None))
            outs.append(channels)
        self.stages = nn.ModuleList(stages)
        self.feature_info = stage_features(outs, [4 * 2**i for i in range(len(outs))],
                                           stem=(stem_width, 2))
        self.head = classifier_head(channels, num_classes, drop_rate,
                                    norm=get_norm(norm)(channels), act=get_act(act)())


@register_model(CLASSIFICATION, forwards_to=DenseNet, fixed=("block_config",))
def densenet121(*, init: str = "kaiming", seed: int | None = None, **kwargs: Any) -> DenseNet:
    """DenseNet-121: dense blocks of (6, 12, 24, 16) layers, growth rate 32."""
    return init_model(DenseNet((6, 12, 24, 16), **kwargs), init, seed=seed)
