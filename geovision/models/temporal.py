"""Models for time series of images (geovision.data.temporal.TimeSeries batches).

`SmallUTAE` follows U-TAE's design at demo scale: one encoder shared by every date, a
lightweight temporal attention (learned per-head queries over dated features, as L-TAE)
that collapses the dates at the lowest resolution, the same attention weights collapsing
the skip connection, then a U-Net decoder. `SingleDateUNet` is its baseline: the small U-Net
on the series' first date alone, with no date information.

Both also take a plain (B, C, H, W) batch, as a series of one date.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from geovision.data.temporal import TimeSeries
from geovision.models.blocks import conv_bn_relu
from geovision.models.registry import SEGMENTATION, register_model
from geovision.models.small import SmallUNet


def as_series(x: Any) -> TimeSeries:
    """A TimeSeries batch as is; a (B, C, H, W) tensor as a series of one date."""
    if isinstance(x, TimeSeries):
        return x
    batch = x.shape[0]
    return TimeSeries(x.unsqueeze(1), torch.zeros(batch, 1, dtype=torch.long, device=x.device),
                      torch.ones(batch, 1, dtype=torch.bool, device=x.device))


def day_encoding(days: torch.Tensor, channels: int, period: float = 1000.0) -> torch.Tensor:
    """Sinusoidal encoding (B, T) days -> (B, T, channels), as transformers encode positions
    (sin and cos of days / period ** (2i / channels))."""
    half = torch.arange(0, channels, 2, device=days.device, dtype=torch.float32)
    frequencies = period ** (-half / channels)
    angles = days.float()[..., None] * frequencies
    encoding = torch.zeros(*days.shape, channels, device=days.device)
    encoding[..., 0::2] = torch.sin(angles)
    encoding[..., 1::2] = torch.cos(angles[..., : channels // 2])
    return encoding


class TemporalAttention(nn.Module):
    """Per pixel, `heads` learned queries attend over the dated features of the real dates;
    each head returns the weighted mean of its share of the channels."""

    def __init__(self, channels: int, heads: int = 4, key_dim: int = 8,
                 period: float = 1000.0) -> None:
        super().__init__()
        if channels % heads:
            raise ValueError(f"channels={channels} must be a multiple of heads={heads}.")
        self.channels, self.heads, self.key_dim, self.period = channels, heads, key_dim, period
        self.norm = nn.LayerNorm(channels)
        self.keys = nn.Linear(channels, heads * key_dim)
        self.queries = nn.Parameter(torch.randn(heads, key_dim) / math.sqrt(key_dim))

    def forward(self, features: torch.Tensor, days: torch.Tensor, valid: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, D, h, w) features -> (B, D, h, w) and the weights (B, heads, T, h, w)."""
        b, t, d, h, w = features.shape
        x = features + day_encoding(days, d, self.period)[..., None, None]
        x = x.permute(0, 3, 4, 1, 2).reshape(b * h * w, t, d)  # one sequence per pixel
        x = self.norm(x)
        keys = self.keys(x).view(-1, t, self.heads, self.key_dim)
        scores = torch.einsum("nthk,hk->nht", keys, self.queries) / math.sqrt(self.key_dim)
        padding = ~valid.repeat_interleave(h * w, dim=0)  # (N, T)
        scores = scores.masked_fill(padding[:, None, :], float("-inf"))
        weights = scores.softmax(dim=-1)
        values = x.view(-1, t, self.heads, d // self.heads)
        out = torch.einsum("nht,nthc->nhc", weights, values).reshape(b, h, w, d)
        return (out.permute(0, 3, 1, 2),
                weights.view(b, h, w, self.heads, t).permute(0, 3, 4, 1, 2))


@register_model(SEGMENTATION, name="small_utae")
class SmallUTAE(nn.Module):
    """Temporal segmenter: shared per-date encoder (two levels), temporal attention at the
    lower level, attention-weighted skip, decoder; logits (B, num_classes, H, W)."""

    def __init__(self, in_channels: int, num_classes: int, width: int = 16, heads: int = 4,
                 key_dim: int = 8, period: float = 1000.0) -> None:
        super().__init__()
        self.enc1 = nn.Sequential(conv_bn_relu(in_channels, width), conv_bn_relu(width, width))
        self.enc2 = nn.Sequential(nn.MaxPool2d(2), conv_bn_relu(width, 2 * width),
                                  conv_bn_relu(2 * width, 2 * width))
        self.attention = TemporalAttention(2 * width, heads, key_dim, period)
        self.up = nn.ConvTranspose2d(2 * width, width, 2, stride=2)
        self.dec = nn.Sequential(conv_bn_relu(2 * width, width), conv_bn_relu(width, width))
        self.out = nn.Conv2d(width, num_classes, 1)

    def _encode(self, images: torch.Tensor, valid: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """Both levels' features of the real dates only (padding stays zero and never
        enters the normalisation statistics)."""
        b, t = images.shape[:2]
        frames = images[valid]  # (real dates, C, H, W)
        f1 = self.enc1(frames)
        f2 = self.enc2(f1)

        def scatter(f: torch.Tensor) -> torch.Tensor:
            out = f.new_zeros(b, t, *f.shape[1:])
            out[valid] = f
            return out
        return scatter(f1), scatter(f2)

    def forward(self, x: Any) -> torch.Tensor:
        series = as_series(x)
        images, valid = series.images, series.valid.bool()
        f1, f2 = self._encode(images, valid)
        pooled, weights = self.attention(f2, series.days, valid)
        # The skip collapses its dates with the heads' mean weights, upsampled to its size.
        skip_weights = F.interpolate(weights.mean(dim=1), size=f1.shape[-2:], mode="nearest")
        skip = (skip_weights.unsqueeze(2) * f1).sum(dim=1)
        up = self.up(pooled)
        up = F.pad(up, (0, skip.shape[-1] - up.shape[-1], 0, skip.shape[-2] - up.shape[-2]))
        return self.out(self.dec(torch.cat([up, skip], dim=1)))


@register_model(SEGMENTATION, name="single_date_unet")
class SingleDateUNet(nn.Module):
    """The single-date baseline: SmallUNet on each series' first date, without its date."""

    def __init__(self, in_channels: int, num_classes: int, width: int = 16) -> None:
        super().__init__()
        self.unet = SmallUNet(in_channels, num_classes, width)

    def forward(self, x: Any) -> torch.Tensor:
        series = as_series(x)
        return self.unet(series.images[:, 0])  # padding is at the end: date 0 is real
