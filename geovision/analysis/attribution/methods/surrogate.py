"""Surrogate methods on superpixels: LIME and Kernel SHAP, fitted in torch (no scikit-learn).

Both switch superpixels off (to the baseline, 0 = the training mean of every band) in random
patterns, evaluate the model on those copies and fit a weighted linear model of the explained
scalar on the on/off pattern; the coefficients are the superpixels' attributions.

Kernel SHAP draws its patterns as captum does (the number of active features from the Shapley
kernel's distribution, then a uniformly random set of that size, after the all-on and all-off
patterns, which get a weight of 1e6), and solves the weighted least squares with an intercept
as ordinary least squares does, so the same seed gives captum's values. LIME draws each
feature on with probability 1/2, weighs a pattern by an exponential kernel of its cosine
distance to the all-on pattern and fits a ridge regression.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn

from geovision.analysis.attribution.targets import Target
from geovision.errors import ConfigError

INF_WEIGHT = 1e6


def superpixels(image: torch.Tensor, n_segments: int = 32, compactness: float = 0.3,
                iterations: int = 6) -> torch.Tensor:
    """(H, W) labels 0..F-1 of a SLIC-like clustering of a (C, H, W) image on all its bands
    and pixel position (`compactness` weighs position against band values)."""
    bands, height, width = image.shape
    grid = max(1, round((n_segments * height / width) ** 0.5))
    cols = max(1, round(n_segments / grid))
    step = ((height * width) / (grid * cols)) ** 0.5
    yy, xx = torch.meshgrid(torch.arange(height, dtype=torch.float32),
                            torch.arange(width, dtype=torch.float32), indexing="ij")
    values = image.detach().float().reshape(bands, -1)
    values = (values - values.mean(1, keepdim=True)) / values.std(1, keepdim=True).clamp_min(1e-6)
    scale = compactness * bands ** 0.5 / step
    features = torch.cat([values, scale * yy.reshape(1, -1), scale * xx.reshape(1, -1)]).T
    cy = (torch.arange(grid, dtype=torch.float32) + 0.5) * height / grid
    cx = (torch.arange(cols, dtype=torch.float32) + 0.5) * width / cols
    seeds = (cy.long().clamp(max=height - 1).view(-1, 1) * width
             + cx.long().clamp(max=width - 1).view(1, -1)).flatten()
    centres = features[seeds]
    labels = torch.zeros(height * width, dtype=torch.long)
    for _ in range(iterations):
        labels = torch.cdist(features, centres).argmin(dim=1)
        counts = torch.bincount(labels, minlength=len(centres)).unsqueeze(1)
        sums = torch.zeros_like(centres).index_add_(0, labels, features)
        centres = torch.where(counts > 0, sums / counts.clamp_min(1), centres)
    _, labels = torch.unique(labels, return_inverse=True)
    return labels.view(height, width)


def grid_features(height: int, width: int, cell: int) -> torch.Tensor:
    """(H, W) labels of square cells of `cell` pixels: the simplest feature mask."""
    rows = torch.arange(height) // cell
    cols = torch.arange(width) // cell
    return rows.view(-1, 1) * (-(-width // cell)) + cols.view(1, -1)


def shap_patterns(num_features: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    """Kernel SHAP's patterns, (1, F) in {0, 1}: all on, all off, then random sets whose size
    follows the Shapley kernel; drawn as captum draws them (so a generator seeded like
    torch.manual_seed gives captum's patterns)."""
    k = torch.arange(num_features, dtype=torch.float)
    probs = torch.tensor(num_features - 1) / (k * (num_features - k))
    probs[0] = 0.0
    probs = (probs / probs.sum()).view(1, -1)
    yield torch.ones(1, num_features, dtype=torch.long)
    yield torch.zeros(1, num_features, dtype=torch.long)
    while True:
        size = torch.multinomial(probs, 1, True, generator=generator).item()
        noise = torch.randn(1, num_features, generator=generator)
        threshold = torch.kthvalue(noise, num_features - size).values.item()
        yield (noise > threshold).long()


def lime_patterns(num_features: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    """LIME's patterns: all on, then each feature on with probability 1/2."""
    yield torch.ones(1, num_features, dtype=torch.long)
    while True:
        yield torch.bernoulli(torch.full((1, num_features), 0.5), generator=generator).long()


def weighted_least_squares(x: torch.Tensor, y: torch.Tensor, w: torch.Tensor,
                           ridge: float = 0.0) -> torch.Tensor:
    """Coefficients of y ~ x @ b + c with sample weights w (float64; the intercept is
    removed by weighted centring, then a minimum-norm least-squares, optionally ridge)."""
    x, y, w = x.double(), y.double(), w.double()
    x_mean = (w[:, None] * x).sum(0) / w.sum()
    y_mean = (w * y).sum() / w.sum()
    root = w.sqrt()
    xs = (x - x_mean) * root[:, None]
    ys = ((y - y_mean) * root)[:, None]
    if ridge > 0:
        xs = torch.cat([xs, ridge ** 0.5 * torch.eye(x.shape[1], dtype=xs.dtype)])
        ys = torch.cat([ys, torch.zeros(x.shape[1], 1, dtype=ys.dtype)])
    return torch.linalg.lstsq(xs, ys, driver="gelsd").solution.flatten()


def _features(images: torch.Tensor, feature_mask: torch.Tensor | None, n_segments: int,
              per_band: bool) -> torch.Tensor:
    """(N, C or 1, H, W) feature ids, 0..F_i-1 for each image."""
    n, bands = images.shape[:2]
    if feature_mask is None:
        masks = torch.stack([superpixels(image, n_segments) for image in images]).unsqueeze(1)
    else:
        masks = torch.as_tensor(feature_mask, dtype=torch.long)
        while masks.ndim < 4:
            masks = masks.unsqueeze(0)
        masks = masks.expand(n, masks.shape[1], *images.shape[-2:])
        if masks.shape[1] not in (1, bands):
            raise ConfigError(f"feature_mask has {masks.shape[1]} bands; give 1 or {bands}.")
    if per_band and masks.shape[1] == 1:
        count = masks.flatten(1).max(dim=1).values + 1
        offsets = torch.arange(bands).view(1, -1, 1, 1) * count.view(-1, 1, 1, 1)
        masks = masks + offsets
    return masks.contiguous()


def _surrogate(model: nn.Module, images: torch.Tensor, target: Target, patterns_for,
               weigh, ridge: float, n_samples: int, feature_mask: torch.Tensor | None,
               n_segments: int, per_band: bool, baseline: float, batch_size: int, seed: int
               ) -> tuple[torch.Tensor, torch.Tensor]:
    masks = _features(images, feature_mask, n_segments, per_band)
    out = torch.zeros(images.shape[0], masks.shape[1], *images.shape[-2:])
    for i, (image, mask) in enumerate(zip(images, masks, strict=True)):
        count = int(mask.max()) + 1
        if count < 2:
            raise ConfigError("the image has a single feature; use more superpixels.")
        # the same seed for every image: a map does not depend on the image's place in a batch
        patterns = patterns_for(count, torch.Generator().manual_seed(seed))
        drawn = torch.cat([next(patterns) for _ in range(n_samples)])
        scores = []
        single = target.index([i])
        with torch.no_grad():
            for start in range(0, n_samples, batch_size):
                chunk = drawn[start:start + batch_size]
                on = chunk[:, mask].to(image.dtype)  # (k, C or 1, H, W)
                perturbed = on * image + (1 - on) * baseline
                scores.append(single.repeat(len(chunk))(model(perturbed)))
        y = torch.cat(scores)
        coef = weighted_least_squares(drawn.float(), y, weigh(drawn), ridge)
        out[i] = coef.float()[mask]
    return out, masks


def kernel_shap(model: nn.Module, images: torch.Tensor, target: Target, n_samples: int = 200,
                feature_mask: torch.Tensor | None = None, n_segments: int = 32,
                per_band: bool = False, baseline: float = 0.0, batch_size: int = 64,
                seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Shapley value estimates of superpixels (of each band's superpixels with
    `per_band`): (N, 1 or C, H, W) attributions and the feature masks used."""
    def weigh(drawn: torch.Tensor) -> torch.Tensor:
        on = drawn.sum(dim=1)
        return torch.where((on == 0) | (on == drawn.shape[1]), INF_WEIGHT, 1.0)

    return _surrogate(model, images, target, shap_patterns, weigh, 0.0, n_samples,
                      feature_mask, n_segments, per_band, baseline, batch_size, seed)


def lime(model: nn.Module, images: torch.Tensor, target: Target, n_samples: int = 200,
         feature_mask: torch.Tensor | None = None, n_segments: int = 32, per_band: bool = False,
         baseline: float = 0.0, kernel_width: float = 0.25, ridge: float = 1.0,
         batch_size: int = 64, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """LIME's local linear surrogate on superpixels: (N, 1 or C, H, W) attributions and the
    feature masks used."""
    def weigh(drawn: torch.Tensor) -> torch.Tensor:
        on = drawn.float()
        cosine = on.sum(1) / (on.norm(dim=1).clamp_min(1e-12) * drawn.shape[1] ** 0.5)
        return torch.exp(-((1 - cosine) ** 2) / kernel_width ** 2)

    return _surrogate(model, images, target, lime_patterns, weigh, ridge, n_samples,
                      feature_mask, n_segments, per_band, baseline, batch_size, seed)
