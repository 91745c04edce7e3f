"""Feature visualisation: an input optimised from noise to excite a class or a unit.

Works for any band count: the image lives in the model's standardised input space (bounded
to +-3 standard deviations by a tanh), parameterised by pixels or by a Fourier spectrum scaled
by 1/frequency (which favours natural-image smoothness), optionally through a band
decorrelation matrix (the square root of the bands' covariance, e.g. estimated on real images)
so that optimisation steps move correlated bands together. Each step sees a randomly jittered
and zoomed copy, so the result cannot rely on single pixels.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from geovision.analysis.attribution.prepare import resolve_layer
from geovision.analysis.attribution.targets import Target
from geovision.errors import ConfigError

PARAMETERISATIONS = ("fft", "pixel")
BOUND = 3.0  # standard deviations


def band_decorrelation(images: torch.Tensor) -> torch.Tensor:
    """(C, C) square root of the band covariance of `images` (N, C, H, W), scaled so its
    largest column norm is 1."""
    bands = images.detach().transpose(0, 1).reshape(images.shape[1], -1).double()
    cov = torch.cov(bands) + 1e-6 * torch.eye(bands.shape[0], dtype=torch.float64)
    values, vectors = torch.linalg.eigh(cov)
    root = vectors @ torch.diag(values.clamp_min(0).sqrt())
    return (root / root.norm(dim=0).max()).float()


class _Image(nn.Module):
    def __init__(self, shape: tuple[int, ...], parameterisation: str,
                 decorrelation: torch.Tensor | None, generator: torch.Generator,
                 decay: float = 1.0) -> None:
        super().__init__()
        n, c, h, w = shape
        self.shape = shape
        self.fft = parameterisation == "fft"
        if self.fft:
            fy = torch.fft.fftfreq(h).view(-1, 1)
            fx = torch.fft.rfftfreq(w).view(1, -1)
            freqs = (fy ** 2 + fx ** 2).sqrt()
            scale = 1.0 / freqs.clamp_min(1.0 / max(h, w)) ** decay
            self.register_buffer("scale", scale / scale.max())
            init = torch.randn((n, c, h, w // 2 + 1, 2), generator=generator) * 0.01
        else:
            init = torch.randn(shape, generator=generator) * 0.01
        self.param = nn.Parameter(init)
        self.register_buffer("mix", decorrelation if decorrelation is not None
                             else torch.eye(c))

    def forward(self) -> torch.Tensor:
        if self.fft:
            spectrum = torch.view_as_complex(self.param) * self.scale
            image = torch.fft.irfft2(spectrum, s=self.shape[-2:], norm="ortho")
        else:
            image = self.param
        image = torch.einsum("ij,njhw->nihw", self.mix, image)
        return BOUND * torch.tanh(image)


def _transform(images: torch.Tensor, jitter: int, scales: tuple[float, ...],
               generator: torch.Generator) -> torch.Tensor:
    """A random zoom (one of `scales`) and shift of up to `jitter` pixels, same size out."""
    n, _, h, w = images.shape
    scale = torch.tensor(scales)[torch.randint(len(scales), (n,), generator=generator)]
    shift = (torch.randint(-jitter, jitter + 1, (n, 2), generator=generator).float()
             if jitter > 0 else torch.zeros(n, 2))
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1 / scale
    theta[:, 0, 2] = 2 * shift[:, 1] / w
    theta[:, 1, 2] = 2 * shift[:, 0] / h
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection",
                         align_corners=False)


def feature_visualisation(model: nn.Module, images: torch.Tensor, target: Target,
                          layer: str | None = None, channel: int | None = None,
                          steps: int = 128, lr: float = 0.05, parameterisation: str = "fft",
                          decorrelation: torch.Tensor | str | None = "data", jitter: int = 2,
                          scales: tuple[float, ...] = (0.9, 0.95, 1.0, 1.05, 1.1),
                          seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs shaped like `images` that maximise each image's target (its class logit; for
    segmentation the class's mean logit over the whole image), or with `layer` and `channel`
    the mean activation of that unit. `decorrelation`: "data" estimates it from `images`, a
    (C, C) matrix is used as given, None optimises the bands independently.
    Returns the optimised inputs and the objective after every step (steps, N)."""
    if parameterisation not in PARAMETERISATIONS:
        raise ConfigError(f"parameterisation {parameterisation!r}: use one of "
                          f"{PARAMETERISATIONS}.")
    if (layer is None) != (channel is None):
        raise ConfigError("a unit is a layer and a channel: give both layer and channel, or "
                          "neither to visualise the target class.")
    if isinstance(decorrelation, str):
        if decorrelation != "data":
            raise ConfigError(f"decorrelation={decorrelation!r}: use 'data', a (C, C) matrix "
                              "or None.")
        decorrelation = band_decorrelation(images)
    generator = torch.Generator().manual_seed(seed)
    image = _Image(tuple(images.shape), parameterisation, decorrelation, generator)
    optimiser = torch.optim.Adam(image.parameters(), lr=lr)
    objective = _objective(model, target, layer, channel, images.shape)
    history = torch.empty(steps, images.shape[0])
    try:
        for step in range(steps):
            optimiser.zero_grad()
            values = objective(_transform(image(), jitter, scales, generator))
            (-values.sum()).backward()
            optimiser.step()
            history[step] = values.detach()
    finally:
        objective.close()
    with torch.no_grad():
        return image().detach(), history


class _objective:
    """The scalar per image to maximise, with the hook it may need removed by `close`."""

    def __init__(self, model: nn.Module, target: Target, layer: str | None,
                 channel: int | None, shape: torch.Size) -> None:
        self.model = model
        self.channel = channel
        self.captured: list[torch.Tensor] = []
        self.handle = None
        if layer is not None:
            self.handle = resolve_layer(model, layer).register_forward_hook(
                lambda _m, _i, out: self.captured.append(out))
        if target.task == "segmentation":  # the class everywhere, not in one image's mask
            target = Target("segmentation", target.classes,
                            torch.ones(len(target), *shape[-2:]))
        self.target = target

    def __call__(self, inputs: torch.Tensor) -> torch.Tensor:
        self.captured.clear()
        output = self.model(inputs)
        if self.handle is None:
            scores = self.target(output)
            if self.target.masks is not None:
                scores = scores / math.prod(self.target.masks.shape[-2:])
            return scores
        activation = self.captured[0]
        if self.channel >= activation.shape[1]:
            raise ConfigError(f"channel {self.channel} but the layer has "
                              f"{activation.shape[1]} channels.")
        return activation[:, self.channel].flatten(1).mean(dim=1)

    def close(self) -> None:
        if self.handle is not None:
            self.handle.remove()
