"""Small CNNs that train in seconds on a CPU: the demo's models and a baseline for any dataset."""

from __future__ import annotations

import torch
from torch import nn

from geovision.models.blocks import conv_bn_relu
from geovision.models.registry import CLASSIFICATION, SEGMENTATION, register_model


@register_model(CLASSIFICATION, name="small_cnn")
class SmallCNN(nn.Module):
    """Image classifier: `depth` conv blocks, each halving resolution, then global pooling."""

    def __init__(self, in_channels: int, num_classes: int, width: int = 32, depth: int = 3,
                 dropout: float = 0.1) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_channels
        for i in range(depth):
            out = width * 2**i
            layers += [conv_bn_relu(channels, out), conv_bn_relu(out, out), nn.MaxPool2d(2)]
            channels = out
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout),
                                  nn.Linear(channels, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


@register_model(SEGMENTATION, name="small_unet")
class SmallUNet(nn.Module):
    """Segmenter: a two-level U-Net returning per-pixel class logits at input resolution."""

    def __init__(self, in_channels: int, num_classes: int, width: int = 16) -> None:
        super().__init__()
        self.enc1 = nn.Sequential(conv_bn_relu(in_channels, width), conv_bn_relu(width, width))
        self.enc2 = nn.Sequential(nn.MaxPool2d(2), conv_bn_relu(width, 2 * width),
                                  conv_bn_relu(2 * width, 2 * width))
        self.bottom = nn.Sequential(nn.MaxPool2d(2), conv_bn_relu(2 * width, 4 * width))
        self.up2 = nn.ConvTranspose2d(4 * width, 2 * width, 2, stride=2)
        self.dec2 = conv_bn_relu(4 * width, 2 * width)
        self.up1 = nn.ConvTranspose2d(2 * width, width, 2, stride=2)
        self.dec1 = conv_bn_relu(2 * width, width)
        self.out = nn.Conv2d(width, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e1 = self.enc1(x)
        e2 = self.enc2(e1)
        d2 = self.dec2(torch.cat([self.up2(self.bottom(e2)), e2], dim=1))
        d1 = self.dec1(torch.cat([self.up1(d2), e1], dim=1))
        return self.out(d1)
