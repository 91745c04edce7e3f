"""Training-time augmentation of whole batches, drawn from a seeded generator.

Working on batches keeps augmentation on the training device and out of the data readers
(files, HDF5 and streaming shards stay identical), and a generator of its own makes it
repeatable for a seed and resumable from a checkpoint.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from geovision.errors import ConfigError


class BatchAugment:
    """Random horizontal / vertical flips and quarter turns, per sample, applied alike to an
    image and its mask. `transforms` is a subset of config.TRANSFORMS; empty does nothing."""

    def __init__(self, transforms: tuple[str, ...], seed: int) -> None:
        self.transforms = tuple(transforms)
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, images: torch.Tensor,
                 masks: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        n = images.shape[0]
        for name, dim in (("hflip", -1), ("vflip", -2)):
            if name in self.transforms:
                chosen = (torch.rand(n, generator=self.generator) < 0.5).to(images.device)
                images = _where(chosen, images.flip(dim), images)
                masks = None if masks is None else _where(chosen, masks.flip(dim), masks)
        if "rot90" in self.transforms:
            if images.shape[-1] != images.shape[-2]:
                raise ConfigError(f"rot90 needs square images, got {tuple(images.shape[-2:])}; "
                                  "drop it from data.transforms or tile the images square.")
            turns = torch.randint(0, 4, (n,), generator=self.generator).to(images.device)
            images = _rotate(images, turns)
            masks = None if masks is None else _rotate(masks, turns)
        return images, masks

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])


def _where(chosen: torch.Tensor, changed: torch.Tensor, unchanged: torch.Tensor) -> torch.Tensor:
    return torch.where(chosen.view(-1, *([1] * (changed.ndim - 1))), changed, unchanged)


def _rotate(batch: torch.Tensor, turns: torch.Tensor) -> torch.Tensor:
    out = batch.clone()
    for k in (1, 2, 3):
        chosen = turns == k
        if chosen.any():
            out[chosen] = torch.rot90(batch[chosen], k, dims=(-2, -1))
    return out


class ViewSampler:
    """Two different random views of the same images, for contrastive learning: a random
    resized crop (area share in `scale`), a random horizontal flip, a per-band gain and offset,
    and pixel noise. Works for any band count (no colour-specific jitter). The settings'
    defaults and bounds live in MoCoSettings (workflow_settings of the moco workflow)."""

    def __init__(self, seed: int, *, scale: tuple[float, float], jitter: float,
                 noise: float) -> None:
        self.seed = seed
        self.scale, self.jitter, self.noise = scale, jitter, noise
        self.generator = torch.Generator().manual_seed(seed)

    def reset(self) -> None:
        """Start the sequence over (evaluation sees the same views every time)."""
        self.generator.manual_seed(self.seed)

    def _uniform(self, *shape: int, low: float = 0.0, high: float = 1.0) -> torch.Tensor:
        return low + (high - low) * torch.rand(*shape, generator=self.generator)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        n, c = images.shape[:2]
        side = self._uniform(n, low=self.scale[0], high=self.scale[1]).sqrt()
        shift_x = self._uniform(n, low=-1, high=1) * (1 - side)
        shift_y = self._uniform(n, low=-1, high=1) * (1 - side)
        flip = torch.where(self._uniform(n) < 0.5, -1.0, 1.0)
        theta = torch.zeros(n, 2, 3)
        theta[:, 0, 0], theta[:, 0, 2] = side * flip, shift_x
        theta[:, 1, 1], theta[:, 1, 2] = side, shift_y
        gain = self._uniform(n, c, 1, 1, low=1 - self.jitter, high=1 + self.jitter)
        offset = self._uniform(n, c, 1, 1, low=-self.jitter, high=self.jitter)
        noise = torch.randn(images.shape, generator=self.generator) * self.noise
        device, dtype = images.device, images.dtype
        grid = F.affine_grid(theta.to(device, dtype), list(images.shape), align_corners=False)
        views = F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection",
                              align_corners=False)
        return views * gain.to(device, dtype) + offset.to(device, dtype) + noise.to(device, dtype)

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])
