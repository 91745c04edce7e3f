"""Grad-CAM on any layer, by its name in `named_modules()`."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from geovision.analysis.attribution.prepare import describe_layers, last_conv_layer, resolve_layer
from geovision.analysis.attribution.targets import Target
from geovision.errors import ConfigError


def grad_cam(model: nn.Module, images: torch.Tensor, target: Target, layer: str | None = None,
             relu: bool = True, upsample: bool = True) -> torch.Tensor:
    """The layer's activations weighted by their spatially averaged gradients, summed over
    channels: (N, 1, h, w) at the layer's resolution, or bilinearly resized to the input's
    (N, 1, H, W). No per-image rescaling: maps keep their scale, so images compare.
    `layer`: any module name (default: the last Conv2d); its output must be (N, C, h, w)."""
    name = layer or last_conv_layer(model)
    module = resolve_layer(model, name)
    captured: list[torch.Tensor] = []

    def capture(_module: nn.Module, _inputs: object, output: object) -> torch.Tensor | None:
        if captured or not torch.is_tensor(output) or output.ndim != 4:
            captured.append(output)  # checked below, after the forward pass
            return None
        # the layer's output as a leaf: the backward pass stops there, not at the input;
        # a clone of it flows on, so an in-place op downstream (x += shortcut) cannot touch it
        leaf = output.detach().requires_grad_(True)
        captured.append(leaf)
        return leaf.clone()

    handle = module.register_forward_hook(capture)
    try:
        scores = target(model(images.detach()))
    finally:
        handle.remove()
    if not captured:
        raise ConfigError(f"layer {name!r} did not run in the forward pass; choose a layer "
                          f"the model uses ({describe_layers(model, name)}).")
    activations = captured[0]
    if not torch.is_tensor(activations) or activations.ndim != 4:
        shape = tuple(activations.shape) if torch.is_tensor(activations) else \
            type(activations).__name__
        raise ConfigError(f"Grad-CAM needs a layer with spatial output (N, C, h, w); layer "
                          f"{name!r} ({type(module).__name__}) returns {shape}. Choose a "
                          f"convolutional layer or block ({describe_layers(model)}).")
    if len(captured) > 1:
        raise ConfigError(f"layer {name!r} runs {len(captured)} times in one forward pass; "
                          "Grad-CAM needs a module called once (prepare() finds such modules).")
    (grads,) = torch.autograd.grad(scores.sum(), activations)
    weights = grads.mean(dim=(2, 3), keepdim=True)
    cam = (weights * activations).sum(dim=1, keepdim=True)
    if relu:
        cam = F.relu(cam)
    if upsample and cam.shape[-2:] != images.shape[-2:]:
        cam = F.interpolate(cam, size=images.shape[-2:], mode="bilinear", align_corners=False)
    return cam.detach()
