"""Grad-CAM on any layer, by its name in `named_modules()`."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from geovision.analysis.attribution.prepare import last_conv_layer, resolve_layer
from geovision.analysis.attribution.targets import Target


def grad_cam(model: nn.Module, images: torch.Tensor, target: Target, layer: str | None = None,
             relu: bool = True, upsample: bool = True) -> torch.Tensor:
    """The layer's activations weighted by their spatially averaged gradients, summed over
    channels: (N, 1, h, w) at the layer's resolution, or bilinearly resized to the input's
    (N, 1, H, W). No per-image rescaling: maps keep their scale, so images compare."""
    module = resolve_layer(model, layer or last_conv_layer(model))
    captured: list[torch.Tensor] = []

    def capture(_module: nn.Module, _inputs: object, output: torch.Tensor) -> torch.Tensor:
        # the layer's output as a leaf: the backward pass stops there, not at the input
        leaf = output.detach().requires_grad_(True)
        captured.append(leaf)
        return leaf

    handle = module.register_forward_hook(capture)
    try:
        scores = target(model(images.detach()))
    finally:
        handle.remove()
    activations = captured[0]
    (grads,) = torch.autograd.grad(scores.sum(), activations)
    weights = grads.mean(dim=(2, 3), keepdim=True)
    cam = (weights * activations).sum(dim=1, keepdim=True)
    if relu:
        cam = F.relu(cam)
    if upsample and cam.shape[-2:] != images.shape[-2:]:
        cam = F.interpolate(cam, size=images.shape[-2:], mode="bilinear", align_corners=False)
    return cam.detach()
