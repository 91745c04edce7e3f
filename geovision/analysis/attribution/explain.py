"""`explain(model, images, target, method, **options)`: the one entry point to the methods."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from geovision.analysis.attribution.methods import (
    feature_visualisation,
    grad_cam,
    guided_backprop,
    integrated_gradients,
    kernel_shap,
    lime,
)
from geovision.analysis.attribution.prepare import last_conv_layer, prepare
from geovision.analysis.attribution.targets import Target, as_target
from geovision.errors import UnknownNameError

METHODS = ("integrated_gradients", "guided_backprop", "grad_cam", "lime", "kernel_shap",
           "feature_visualisation")
# Methods whose maps have one value per band (the others give one per pixel).
PER_BAND = ("integrated_gradients", "guided_backprop")


@dataclass
class Explanation:
    """`maps`: (N, C, H, W) for per-band methods, (N, 1, H, W) for Grad-CAM and the
    superpixel methods (C with per_band=True), the optimised inputs (N, C, H, W) for feature
    visualisation. `extras`: the completeness error (IG), the feature masks (LIME, Kernel
    SHAP), the layer (Grad-CAM), the objective per step (feature visualisation)."""

    method: str
    maps: torch.Tensor
    target: Target
    extras: dict[str, Any] = field(default_factory=dict)


def explain(model: nn.Module, images: torch.Tensor,
            target: Target | int | Sequence[int] | torch.Tensor | None, method: str,
            task: str | None = None, prepared: bool = False, **options: Any) -> Explanation:
    """Explain `target` (a Target, classes, or None for the predicted ones) on `images`
    (N, C, H, W, standardised as in training) with `method`, one of METHODS; `options` go to
    the method (e.g. n_steps for IG, layer for Grad-CAM, n_samples for LIME and Kernel SHAP).
    The model is used through a prepared copy (eval, float32, no in-place activations) unless
    `prepared` says it already is one."""
    if method not in METHODS:
        raise UnknownNameError(f"attribution method {method!r}; use one of {', '.join(METHODS)}.")
    images = images.detach().float()
    if not prepared:
        model = prepare(model, images)
    target = as_target(model, images, target, task)
    extras: dict[str, Any] = {}
    if method == "integrated_gradients":
        maps, delta = integrated_gradients(model, images, target, **options)
        extras["delta"] = delta
    elif method == "guided_backprop":
        maps = guided_backprop(model, images, target, **options)
    elif method == "grad_cam":
        options.setdefault("layer", None)
        extras["layer"] = options["layer"] or last_conv_layer(model)
        maps = grad_cam(model, images, target, **{**options, "layer": extras["layer"]})
    elif method in ("lime", "kernel_shap"):
        surrogate = lime if method == "lime" else kernel_shap
        maps, masks = surrogate(model, images, target, **options)
        extras["feature_masks"] = masks
    else:
        maps, history = feature_visualisation(model, images, target, **options)
        extras["objective"] = history
    return Explanation(method=method, maps=maps, target=target, extras=extras)


def band_importance(maps: torch.Tensor) -> torch.Tensor:
    """Each band's share of the absolute attribution, per image: (N, C), rows sum to 1."""
    totals = maps.abs().sum(dim=(2, 3))
    return totals / totals.sum(dim=1, keepdim=True).clamp_min(1e-12)
