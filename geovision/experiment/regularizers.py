"""The config's pairwise loss terms (Potts, normalized cut) for a segmentation module.

Each term is computed on the softmax of the logits, with the Gaussian affinity of the batch's
images in units of [0, 1]-scaled bands: the standardised bands the model sees are multiplied by
the dataset's STD_DEVS (the means cancel in differences). Those are the dataset class's
figures, not the train statistics a run may have recorded: they differ little, and only the
kernel's width depends on them. Settings not in the config come from the term's preset
(geovision.models.losses.PRESETS).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from geovision.experiment.config import LossConfig
from geovision.models.losses import (
    PRESETS,
    Kernel,
    Normalize,
    linear_ramp,
    pairwise_loss,
    with_overrides,
)


@dataclass(frozen=True)
class PairwiseSpec:
    """One term with its preset filled in."""

    name: str
    kernel: Kernel
    weight: float
    normalize: Normalize
    ramp: tuple[float, float] | None
    roi: str

    def weight_at(self, progress: float | None) -> float:
        """The weight at `progress` (fraction of training steps); None (evaluation): full."""
        if self.ramp is None or progress is None:
            return self.weight
        return self.weight * linear_ramp(progress, *self.ramp)


def pairwise_specs(loss: LossConfig) -> list[PairwiseSpec]:
    specs = []
    for name, term in loss.pairwise().items():
        preset = PRESETS[term.preset]
        kernel = with_overrides(preset.kernel, sigma_rgb=term.sigma_rgb, sigma_xy=term.sigma_xy,
                                radius=term.radius, scale=term.scale)
        ramp = preset.ramp if term.ramp is None else (term.ramp.start, term.ramp.end)
        specs.append(PairwiseSpec(
            name=name, kernel=kernel,
            weight=preset.weight if term.weight is None else term.weight,
            normalize=term.normalize or preset.normalize, ramp=ramp, roi=term.roi))
    return specs


class PairwiseTerms(nn.Module):
    """The configured regularisers: values (unweighted) and their weights at this step."""

    def __init__(self, loss: LossConfig, band_std: Sequence[float]) -> None:
        super().__init__()
        self.specs = pairwise_specs(loss)
        # Not in the state dict: checkpoints stay those of the plain model.
        self.register_buffer("band_std", torch.tensor(band_std, dtype=torch.float32).view(
            1, -1, 1, 1), persistent=False)

    def forward(self, logits: torch.Tensor, image: torch.Tensor, labelled: torch.Tensor,
                progress: float | None = None) -> dict[str, tuple[torch.Tensor, float]]:
        """name -> (value, weight); `labelled` (B, H, W) marks pixels that have a class."""
        probs = logits.float().softmax(dim=1)
        bands = image.float() * self.band_std
        return {spec.name: (pairwise_loss(spec.name, probs, bands, spec.kernel,
                                          roi=labelled if spec.roi == "labelled" else None,
                                          normalize=spec.normalize),
                            spec.weight_at(progress))
                for spec in self.specs}
