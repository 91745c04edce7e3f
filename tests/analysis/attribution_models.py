"""Tiny models for the attribution tests: each module called once, as attribution needs."""

from __future__ import annotations

import torch
from torch import nn


class TinyCNN(nn.Module):
    """Classifier: two conv blocks (own ReLU each), global pooling, a linear head."""

    def __init__(self, in_channels: int = 4, num_classes: int = 3, width: int = 6) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1, stride=2), nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1), nn.ReLU())
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                  nn.Linear(width, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class TinySegmenter(nn.Module):
    """Per-pixel logits at input resolution."""

    def __init__(self, in_channels: int = 4, num_classes: int = 3, width: int = 6) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU(),
                                     nn.Conv2d(width, width, 3, padding=1), nn.ReLU())
        self.head = nn.Conv2d(width, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x))


class SharedReLU(nn.Module):
    """Calls one ReLU twice: what prepare must refuse."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(4, 4, 3, padding=1)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
        self.relu = nn.ReLU(inplace=True)
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.conv2(self.relu(self.conv1(x))))
        return self.fc(x.mean(dim=(2, 3)))


def seeded(model_cls: type[nn.Module], seed: int = 0, **kwargs) -> nn.Module:
    """A model with random weights from `seed`, BN statistics made non-trivial, eval mode."""
    torch.manual_seed(seed)
    model = model_cls(**kwargs)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            nn.init.normal_(module.weight, 1.0, 0.2)
            nn.init.normal_(module.bias, 0.0, 0.2)
    return model.eval()


class Block(nn.Module):
    """A residual block named like the models library's: conv1/norm1/act1, conv2/norm2, an
    in-place residual add, act2."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(width, width, 3, padding=1)
        self.norm1 = nn.BatchNorm2d(width)
        self.act1 = nn.ReLU()
        self.conv2 = nn.Conv2d(width, width, 3, padding=1)
        self.norm2 = nn.BatchNorm2d(width)
        self.act2 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.norm2(self.conv2(self.act1(self.norm1(self.conv1(x)))))
        out += x
        return self.act2(out)


class Stage(nn.Module):
    def __init__(self, in_width: int, width: int, depth: int) -> None:
        super().__init__()
        self.downsample = nn.Conv2d(in_width, width, 3, stride=2, padding=1)
        self.blocks = nn.Sequential(*[Block(width) for _ in range(depth)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.downsample(x))


class StagedNet(nn.Module):
    """A classifier with the models library's layout: `stem.*`, `stages.{i}.blocks.{j}.*`,
    `head.*`."""

    def __init__(self, in_channels: int = 4, num_classes: int = 3, width: int = 6) -> None:
        super().__init__()
        self.stem = nn.Sequential()
        self.stem.add_module("conv", nn.Conv2d(in_channels, width, 3, padding=1))
        self.stem.add_module("norm", nn.BatchNorm2d(width))
        self.stem.add_module("act", nn.ReLU())
        self.stages = nn.Sequential(Stage(width, width, 2), Stage(width, 2 * width, 2))
        self.head = nn.Sequential()
        self.head.add_module("pool", nn.AdaptiveAvgPool2d(1))
        self.head.add_module("flatten", nn.Flatten())
        self.head.add_module("fc", nn.Linear(2 * width, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(x)))
