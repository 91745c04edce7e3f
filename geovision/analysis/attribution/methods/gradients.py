"""Gradient methods: Integrated Gradients and Guided Backprop, per pixel and per band."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from geovision.analysis.attribution.prepare import NotApplicableError
from geovision.analysis.attribution.targets import Target
from geovision.errors import ConfigError

PATHS = ("gausslegendre", "riemann_trapezoid")


def path_points(n_steps: int, rule: str) -> tuple[np.ndarray, np.ndarray]:
    """(alphas, weights) of the quadrature along the straight path from baseline to input:
    Gauss-Legendre nodes on [0, 1], or the trapezoid rule on n_steps evenly spaced points."""
    if rule == "gausslegendre":
        if n_steps < 1:
            raise ConfigError(f"n_steps={n_steps}: Gauss-Legendre needs at least 1 step.")
        nodes, weights = np.polynomial.legendre.leggauss(n_steps)
        return 0.5 * (1 + nodes), 0.5 * weights
    if rule == "riemann_trapezoid":
        if n_steps < 2:
            raise ConfigError(f"n_steps={n_steps}: the trapezoid rule needs at least 2 steps.")
        weights = np.full(n_steps, 1 / n_steps)
        weights[[0, -1]] /= 2
        return torch.linspace(0, 1, n_steps, dtype=torch.float32).double().numpy(), weights
    raise ConfigError(f"IG rule {rule!r}: use one of {PATHS}.")


def integrated_gradients(model: nn.Module, images: torch.Tensor, target: Target,
                         baseline: torch.Tensor | float = 0.0, n_steps: int = 32,
                         rule: str = "gausslegendre", internal_batch_size: int | None = None
                         ) -> tuple[torch.Tensor, torch.Tensor]:
    """Attributions (N, C, H, W) and each image's completeness error: their sum minus
    f(input) - f(baseline). `baseline` 0 is the training mean (inputs are standardised).
    `internal_batch_size` bounds the images evaluated at once (steps x batch)."""
    baseline = torch.as_tensor(baseline, dtype=images.dtype).expand_as(images)
    alphas, weights = path_points(n_steps, rule)
    n = images.shape[0]
    per_chunk = n_steps if internal_batch_size is None else max(1, internal_batch_size // n)
    difference = images - baseline
    total = torch.zeros_like(images)
    for start in range(0, n_steps, per_chunk):
        a = torch.tensor(alphas[start:start + per_chunk], dtype=images.dtype)
        w = torch.tensor(weights[start:start + per_chunk], dtype=images.dtype)
        k = len(a)
        points = (baseline.unsqueeze(0) + a.view(-1, 1, 1, 1, 1) * difference.unsqueeze(0))
        points = points.reshape(k * n, *images.shape[1:]).requires_grad_(True)
        scores = target.repeat(k)(model(points))
        (grads,) = torch.autograd.grad(scores.sum(), points)
        total += (grads.view(k, *images.shape) * w.view(-1, 1, 1, 1, 1)).sum(dim=0)
    attributions = total * difference
    with torch.no_grad():
        ends = target.repeat(2)(model(torch.cat([images, baseline])))
    delta = attributions.sum(dim=(1, 2, 3)) - (ends[:n] - ends[n:])
    return attributions.detach(), delta.detach()


def guided_backprop(model: nn.Module, images: torch.Tensor, target: Target) -> torch.Tensor:
    """The input gradient with only positive gradients passed back through each ReLU
    (its gradient times the mask of positive inputs, then clamped at 0): (N, C, H, W)."""
    relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
    if not relus:
        others = sorted({type(m).__name__ for m in model.modules()
                         if isinstance(m, nn.SiLU | nn.GELU | nn.LeakyReLU | nn.ELU | nn.Hardswish
                                       | nn.Mish | nn.Sigmoid | nn.Tanh)})
        found = f" (its activations: {', '.join(others)})" if others else ""
        raise NotApplicableError(
            "Guided Backprop is defined on nn.ReLU modules (it passes back only positive "
            f"gradients through each) and the model has none{found}; F.relu calls cannot be "
            "hooked. Use integrated_gradients or grad_cam for this model.")
    handles = [m.register_full_backward_hook(
        lambda _m, grad_in, _out: tuple(None if g is None else g.clamp(min=0) for g in grad_in))
        for m in relus]
    try:
        inputs = images.detach().clone().requires_grad_(True)
        scores = target(model(inputs))
        (grads,) = torch.autograd.grad(scores.sum(), inputs)
    finally:
        for handle in handles:
            handle.remove()
    return grads.detach()
