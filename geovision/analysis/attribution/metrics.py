"""Faithfulness and sanity checks of attribution maps.

- Deletion / insertion (Petsiuk et al. 2018, RISE): pixels in order of decreasing
  attribution are replaced by a substrate (deletion) or restored onto it (insertion) while the
  class probability is tracked; the area under each curve (trapezoid rule over the fraction
  of pixels changed). A faithful map gives a low deletion and a high insertion AUC. The
  substrate is band-aware: every band of a pixel is replaced, by that band's training mean
  (0 in standardised inputs) or by that band blurred.
- Cascading model randomisation (Adebayo et al. 2018): layers re-initialised from the top
  down, one more each time; the Spearman rank correlation of the maps with the trained model's
  should fall if a method depends on what the model learnt.
- Relevance mass: the share of positive attribution inside a region (e.g. the planted class),
  to compare with the region's share of the image.
- Band ablation: the probability lost when one band is set to its mean.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from geovision.analysis.attribution.targets import Target
from geovision.errors import ConfigError

SUBSTRATES = ("mean", "blur")


def pixel_scores(maps: torch.Tensor) -> torch.Tensor:
    """(N, H*W) one score per pixel: the map summed over its bands (signed: evidence for the
    target comes first)."""
    return maps.sum(dim=1).flatten(1)


def blur(images: torch.Tensor, sigma: float = 5.0, size: int = 11) -> torch.Tensor:
    """Each band Gaussian-blurred on its own (reflect padding)."""
    x = torch.arange(size, dtype=images.dtype) - size // 2
    kernel = torch.exp(-x ** 2 / (2 * sigma ** 2))
    kernel = kernel / kernel.sum()
    c = images.shape[1]
    pad = min(size // 2, images.shape[-1] - 1, images.shape[-2] - 1)
    out = F.pad(images, (pad, pad, pad, pad), mode="reflect")
    if pad < size // 2:
        out = F.pad(out, [size // 2 - pad] * 4, mode="replicate")
    out = F.conv2d(out, kernel.view(1, 1, 1, -1).expand(c, 1, 1, size), groups=c)
    return F.conv2d(out, kernel.view(1, 1, -1, 1).expand(c, 1, size, 1), groups=c)


def substrate(images: torch.Tensor, kind: str) -> torch.Tensor:
    if kind == "mean":
        return torch.zeros_like(images)
    if kind == "blur":
        return blur(images)
    raise ConfigError(f"substrate {kind!r}: use one of {SUBSTRATES}.")


def auc(curve: torch.Tensor) -> torch.Tensor:
    """Area under (N, S+1) curves sampled evenly on [0, 1] (trapezoid rule)."""
    steps = curve.shape[1] - 1
    return (curve.sum(dim=1) - curve[:, 0] / 2 - curve[:, -1] / 2) / steps


@torch.no_grad()
def deletion_insertion(model: nn.Module, images: torch.Tensor, maps: torch.Tensor,
                       target: Target, steps: int = 16, deletion_substrate: str = "mean",
                       insertion_substrate: str = "blur", batch_size: int = 64
                       ) -> dict[str, torch.Tensor]:
    """Deletion and insertion curves (N, steps+1) and their AUCs (N,) of `maps`."""
    n, _, h, w = images.shape
    order = pixel_scores(maps).argsort(dim=1, descending=True)
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(h * w).expand(n, -1))
    ranks = ranks.view(n, 1, h, w)
    counts = torch.linspace(0, h * w, steps + 1).round().long()
    result = {}
    for mode, kind in (("deletion", deletion_substrate), ("insertion", insertion_substrate)):
        base = substrate(images, kind)
        curve = torch.empty(n, steps + 1)
        for i in range(n):
            changed = ranks[i:i + 1] < counts.view(-1, 1, 1, 1)  # (S+1, 1, H, W)
            if mode == "deletion":
                x = torch.where(changed, base[i:i + 1], images[i:i + 1])
            else:
                x = torch.where(changed, images[i:i + 1], base[i:i + 1])
            single = target.index([i])
            values = []
            for start in range(0, steps + 1, batch_size):
                chunk = x[start:start + batch_size]
                values.append(single.repeat(len(chunk)).probability(model(chunk)))
            curve[i] = torch.cat(values)
        result[f"{mode}_curve"] = curve
        result[f"{mode}_auc"] = auc(curve)
    return result


def relevance_mass(maps: torch.Tensor, regions: torch.Tensor) -> torch.Tensor:
    """(N,) share of the positive attribution (summed over bands) inside `regions` (N, H, W)."""
    positive = maps.sum(dim=1).clamp_min(0)
    inside = (positive * regions.to(positive.dtype)).sum(dim=(1, 2))
    return inside / positive.sum(dim=(1, 2)).clamp_min(1e-12)


def _ranks(values: torch.Tensor) -> torch.Tensor:
    ranks = torch.empty_like(values)
    order = values.argsort(dim=1)
    ranks.scatter_(1, order, torch.arange(values.shape[1], dtype=values.dtype)
                   .expand(values.shape[0], -1).contiguous())
    return ranks


def spearman(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(N,) Spearman rank correlation of two batches of maps, per image (ties by order)."""
    ra = _ranks(a.flatten(1).double())
    rb = _ranks(b.flatten(1).double())
    ra = ra - ra.mean(dim=1, keepdim=True)
    rb = rb - rb.mean(dim=1, keepdim=True)
    return ((ra * rb).sum(1) / (ra.norm(dim=1) * rb.norm(dim=1)).clamp_min(1e-12)).float()


def parameter_layers(model: nn.Module) -> list[str]:
    """Names of the modules holding parameters of their own, in registration order."""
    return [name for name, module in model.named_modules()
            if name and any(True for _ in module.parameters(recurse=False))]


def cascading_randomisation(model: nn.Module, images: torch.Tensor, target: Target,
                            explain_fn: Callable[[nn.Module], torch.Tensor],
                            layers: list[str] | None = None, absolute: bool = False,
                            seed: int = 0, max_points: int | None = None
                            ) -> list[tuple[str, float]]:
    """(layer, mean Spearman correlation with the trained model's maps) after re-initialising
    each of `layers` (default: every layer with parameters) from the top down, cumulatively.
    `explain_fn(model)` computes the maps; the model is copied, never changed. With
    `max_points`, every layer is still randomised in turn but the maps are compared only
    after that many of them, evenly spread (always including the last). Signed maps
    are compared unless `absolute`: |IG| keeps the input's own structure (IG is the input
    times an averaged gradient) even when every weight is random."""
    reference = explain_fn(model)
    randomised = copy.deepcopy(model)
    names = layers if layers is not None else parameter_layers(model)
    torch.manual_seed(seed)
    order = list(reversed(names))
    points = set(range(len(order)))
    if max_points is not None and len(order) > max_points:
        points = {round(i * (len(order) - 1) / (max_points - 1)) for i in range(max_points)}
    curve = []
    for position, name in enumerate(order):
        module = randomised.get_submodule(name)
        if not hasattr(module, "reset_parameters"):
            raise ConfigError(f"layer {name!r} ({type(module).__name__}) has no "
                              "reset_parameters() to randomise it; pass other layers.")
        module.reset_parameters()
        if isinstance(module, nn.modules.batchnorm._BatchNorm):  # the identity is not random
            nn.init.normal_(module.weight, 1.0, 0.5)
            nn.init.normal_(module.bias, 0.0, 0.5)
        for parameter in module.parameters(recurse=False):
            parameter.requires_grad_(False)
        if position not in points:
            continue
        maps = explain_fn(randomised)
        a, b = (reference.abs(), maps.abs()) if absolute else (reference, maps)
        curve.append((name, float(spearman(a, b).mean())))
    return curve


@torch.no_grad()
def band_ablation(model: nn.Module, images: torch.Tensor, target: Target) -> torch.Tensor:
    """(N, C) probability lost when each band in turn is set to its training mean (0)."""
    n, c = images.shape[:2]
    full = target.probability(model(images))
    drops = torch.empty(n, c)
    for band in range(c):
        x = images.clone()
        x[:, band] = 0
        drops[:, band] = full - target.probability(model(x))
    return drops
