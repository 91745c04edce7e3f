"""Integrated Gradients attribution maps for a trained classifier, as a PNG grid.

A classifier's predicted class is explained; for a multi-label model, the label it is most
confident of (the highest logit), with every label it predicts shown beside the truth.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from captum.attr import IntegratedGradients
from torch import nn

from geovision.analysis.plots import plt, rgb_composite, save_figure
from geovision.data.base import GeoDataset
from geovision.errors import ConfigError, DataError


@dataclass
class AttributionReport:
    grid_png: Path
    df_idx: list[int]
    predicted: list[str]  # multilabel: the predicted labels joined by "|"
    actual: list[str]
    explained: list[str] = field(default_factory=list)  # the class each map explains
    band_importance: dict[str, float] = field(default_factory=dict)
    convergence_delta: float = 0.0


def integrated_gradients(model: nn.Module, images: torch.Tensor, targets: torch.Tensor,
                         n_steps: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-pixel, per-band attributions against an all-zero baseline (the dataset mean after
    normalisation), with captum's completeness error per image."""
    ig = IntegratedGradients(model)
    attributions, delta = ig.attribute(images, baselines=torch.zeros_like(images),
                                       target=targets, n_steps=n_steps,
                                       return_convergence_delta=True)
    return attributions.detach(), delta.detach()


def attribution_report(model: nn.Module, dataset: GeoDataset, out_dir: Path,
                       num_images: int = 6, n_steps: int = 32) -> AttributionReport:
    """Explain the model's predictions on the first `num_images` samples of `dataset`.

    Writes `integrated_gradients.png`: per image the RGB composite, the attribution magnitude
    (summed over bands) and the predicted vs true class.
    """
    if dataset.TASK not in ("classification", "multilabel"):
        raise ConfigError(f"Attribution reports explain classifiers; {dataset.NAME} is a "
                          f"{dataset.TASK} dataset.")
    model = model.eval()
    count = min(num_images, len(dataset))
    if count == 0:
        raise DataError(f"The {dataset.split} split of {dataset.NAME} is empty.")
    samples = [dataset[i] for i in range(count)]
    images = torch.stack([s[0] for s in samples])
    with torch.no_grad():
        logits = model(images)
    explained = logits.argmax(dim=1)
    attributions, delta = integrated_gradients(model, images, explained, n_steps)
    magnitude = attributions.abs().sum(dim=1).numpy()
    per_band = attributions.abs().mean(dim=(0, 2, 3))
    per_band = (per_band / per_band.sum().clamp_min(1e-12)).tolist()

    names = dataset.CLASS_NAMES
    if dataset.TASK == "multilabel":
        def label_names(vector: torch.Tensor) -> str:
            return "|".join(names[i] for i in torch.nonzero(vector).flatten().tolist()) or "-"

        actual = [label_names(s[1]) for s in samples]
        predicted = [label_names(row >= 0) for row in logits]
    else:
        actual = [names[int(s[1])] for s in samples]
        predicted = [names[int(p)] for p in explained]
    fig, axes = plt.subplots(count, 2, figsize=(6, 2.7 * count), squeeze=False)
    for row in range(count):
        raw = dataset.read_raw(row)[0]
        axes[row, 0].imshow(rgb_composite(raw, dataset.BANDS))
        axes[row, 0].set_title(f"true {actual[row]}\npred {predicted[row]}", fontsize=8)
        axes[row, 1].imshow(magnitude[row], cmap="inferno")
        axes[row, 1].set_title(f"|IG| for {names[int(explained[row])]}\n(summed over bands)",
                               fontsize=8)
        for ax in axes[row]:
            ax.axis("off")
    out_dir.mkdir(parents=True, exist_ok=True)
    grid = save_figure(fig, out_dir / "integrated_gradients.png")
    return AttributionReport(
        grid_png=grid,
        df_idx=[int(s[2]) for s in samples],
        predicted=predicted,
        actual=actual,
        explained=[names[int(e)] for e in explained],
        band_importance={band: float(v) for band, v in zip(dataset.BANDS, per_band, strict=True)},
        convergence_delta=float(np.abs(delta.numpy()).max()),
    )
