"""The attribution report of a trained model: six methods on test images, with their scores.

For each method: a composite figure (per image the RGB composite and the map summed over
bands; for feature visualisation the optimised input) and a per-band figure; a metrics table
(deletion and insertion AUC, relevance mass inside the explained class's true region where
the dataset has masks, IG's completeness error, the rank correlation left after cascading
randomisation, seconds); band importance; and a markdown summary. Written to `out_dir`:
<method>.png, <method>_bands.png, randomisation.png, metrics.csv, report.json, summary.md.
A method that cannot apply to the model (Guided Backprop without ReLU modules) is listed as
skipped, with the reason, rather than failing the report.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm import tqdm

from geovision.analysis.attribution.explain import METHODS, band_importance, explain
from geovision.analysis.attribution.metrics import (
    band_ablation,
    cascading_randomisation,
    deletion_insertion,
    relevance_mass,
)
from geovision.analysis.attribution.prepare import NotApplicableError, prepare
from geovision.analysis.attribution.targets import predicted_target
from geovision.analysis.plots import plt, rgb_composite, save_figure
from geovision.errors import DataError
from geovision.io.atomic import atomic_file

# Report defaults sized for a CPU (IG 32 steps, <= 200 surrogate samples).
DEFAULT_OPTIONS: dict[str, dict[str, Any]] = {
    "integrated_gradients": {"n_steps": 32},
    "guided_backprop": {},
    "grad_cam": {},
    "lime": {"n_samples": 200, "n_segments": 16, "per_band": True},
    "kernel_shap": {"n_samples": 200, "n_segments": 16, "per_band": True},
    "feature_visualisation": {"steps": 32},
}
RANDOMISED = ("integrated_gradients", "guided_backprop", "grad_cam")
RANDOMISATION_POINTS = 6  # maps compared after this many of the layers randomised
RANDOMISATION_IG_STEPS = 16  # enough for a rank correlation


@dataclass
class AttributionReport:
    out_dir: Path
    figures: dict[str, Path]  # name -> PNG
    metrics: pd.DataFrame  # one row per method
    band_importance: dict[str, dict[str, float]]  # method (and "ablation") -> band -> share
    randomisation: dict[str, list[tuple[str, float]]]
    summary_md: Path
    df_idx: list[int]
    predicted: list[str]
    actual: list[str]
    explained: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # method -> why it does not apply


def _labels(dataset: Any, samples: list, output: torch.Tensor, explained: torch.Tensor
            ) -> tuple[list[str], list[str]]:
    names = dataset.CLASS_NAMES
    if dataset.TASK == "multilabel":
        def join(vector: torch.Tensor) -> str:
            return "|".join(names[i] for i in torch.nonzero(vector).flatten().tolist()) or "-"

        return [join(row >= 0) for row in output], [join(s[1]) for s in samples]
    if dataset.TASK == "segmentation":
        return [names[int(c)] for c in explained], \
            [names[int(s[1].argmax(0).flatten().mode().values)] for s in samples]
    return [names[int(c)] for c in explained], [names[int(s[1])] for s in samples]


def _signed(ax: Any, values: np.ndarray) -> None:
    limit = float(np.abs(values).max()) or 1.0
    ax.imshow(values, cmap="RdBu_r", vmin=-limit, vmax=limit)


def _composite_figure(method: str, maps: torch.Tensor, raws: list[np.ndarray], bands: Sequence[str],
                      titles: list[str]) -> Any:
    n = len(raws)
    fig, axes = plt.subplots(n, 2, figsize=(5, 2.5 * n), squeeze=False)
    for row in range(n):
        axes[row, 0].imshow(rgb_composite(raws[row], bands))
        axes[row, 0].set_title(titles[row], fontsize=7)
        if method == "feature_visualisation":
            axes[row, 1].imshow(rgb_composite(maps[row].numpy(), bands))
            axes[row, 1].set_title("optimised input", fontsize=7)
        else:
            _signed(axes[row, 1], maps[row].sum(0).numpy())
            axes[row, 1].set_title(f"{method} (sum over bands)", fontsize=7)
        for ax in axes[row]:
            ax.axis("off")
    return fig


def _bands_figure(method: str, maps: torch.Tensor, bands: Sequence[str]) -> Any:
    n, c = maps.shape[:2]
    fig, axes = plt.subplots(n, c, figsize=(2 * c, 2 * n), squeeze=False)
    for row in range(n):
        for band in range(c):
            ax = axes[row, band]
            values = maps[row, band].numpy()
            if method == "feature_visualisation":
                ax.imshow(values, cmap="gray")
            else:
                _signed(ax, values)
            label = bands[band] if c == len(bands) else "all bands"
            ax.set_title(label, fontsize=7)
            ax.axis("off")
    return fig


def attribution_report(model: nn.Module, dataset: Any, out_dir: Path, num_images: int = 4,
                       methods: Sequence[str] = METHODS,
                       options: dict[str, dict[str, Any]] | None = None,
                       randomise: Sequence[str] = RANDOMISED, progress: bool = True
                       ) -> AttributionReport:
    """Explain the model's predictions on the first `num_images` samples of `dataset` (whose
    transform standardises as in training) with each of `methods`; see the module docstring
    for what is written. `options` override DEFAULT_OPTIONS per method."""
    count = min(num_images, len(dataset))
    if count == 0:
        raise DataError(f"The {dataset.split} split of {dataset.NAME} is empty: nothing to "
                        "explain.")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    samples = [dataset[i] for i in range(count)]
    images = torch.stack([torch.as_tensor(s[0]) for s in samples]).float()
    raws = [dataset.read_raw(i)[0] for i in range(count)]
    bands = list(dataset.BANDS)
    task = dataset.TASK
    model = prepare(model, images)
    target = predicted_target(model, images, task)
    with torch.no_grad():
        output = model(images)
    predicted, actual = _labels(dataset, samples, output, target.classes)
    names = dataset.CLASS_NAMES
    explained = [names[int(c)] for c in target.classes]
    titles = [f"true {a}\npred {p}\nexplains {e}"
              for a, p, e in zip(actual, predicted, explained, strict=True)]
    regions = None
    if task == "segmentation":  # the explained class's true pixels
        truth = torch.stack([torch.as_tensor(s[1]).argmax(0) for s in samples])
        regions = (truth == target.classes.view(-1, 1, 1)).float()

    options = {m: {**DEFAULT_OPTIONS.get(m, {}), **(options or {}).get(m, {})} for m in methods}
    figures: dict[str, Path] = {}
    rows = []
    importance: dict[str, dict[str, float]] = {}
    randomisation: dict[str, list[tuple[str, float]]] = {}
    skipped: dict[str, str] = {}
    for method in tqdm(methods, desc="attribution methods", leave=True, disable=not progress):
        started = time.perf_counter()
        try:
            result = explain(model, images, target, method, prepared=True, **options[method])
        except NotApplicableError as error:  # e.g. Guided Backprop on a model without ReLUs
            skipped[method] = str(error)
            rows.append({"method": method, "seconds": round(time.perf_counter() - started, 3)})
            continue
        seconds = time.perf_counter() - started
        maps = result.maps
        figures[method] = save_figure(_composite_figure(method, maps, raws, bands, titles),
                                      out_dir / f"{method}.png")
        figures[f"{method}_bands"] = save_figure(_bands_figure(method, maps, bands),
                                                 out_dir / f"{method}_bands.png")
        row: dict[str, Any] = {"method": method, "seconds": round(seconds, 3)}
        if method != "feature_visualisation":
            scores = deletion_insertion(model, images, maps, target)
            row["deletion_auc"] = float(scores["deletion_auc"].mean())
            row["insertion_auc"] = float(scores["insertion_auc"].mean())
            if regions is not None:
                row["relevance_mass"] = float(relevance_mass(maps, regions).mean())
                row["region_share"] = float(regions.mean())
            if maps.shape[1] == len(bands):
                shares = band_importance(maps).mean(0).tolist()
                importance[method] = dict(zip(bands, shares, strict=True))
        else:
            objective = result.extras["objective"]
            row["objective_start"] = float(objective[0].mean())
            row["objective_end"] = float(objective[-1].mean())
        if "delta" in result.extras:
            row["max_completeness_error"] = float(result.extras["delta"].abs().max())
        if method in randomise:
            method_options = {**options[method]}
            if method == "grad_cam":
                method_options["layer"] = result.extras["layer"]
            if method == "integrated_gradients":
                method_options["n_steps"] = min(method_options.get("n_steps", 32),
                                                RANDOMISATION_IG_STEPS)
            curve = cascading_randomisation(
                model, images, target,
                lambda m, method=method, o=method_options: explain(
                    m, images, target, method, prepared=True, **o).maps,
                max_points=RANDOMISATION_POINTS)
            randomisation[method] = curve
            row["randomised_rank_correlation"] = curve[-1][1]
        rows.append(row)
    drops = band_ablation(model, images, target).mean(0)
    importance["ablation"] = dict(zip(bands, drops.tolist(), strict=True))
    if randomisation:
        figures["randomisation"] = _randomisation_figure(randomisation, out_dir)
    metrics = pd.DataFrame(rows).set_index("method")
    with atomic_file(out_dir / "metrics.csv") as tmp:
        metrics.to_csv(tmp)
    report = AttributionReport(
        out_dir=out_dir, figures=figures, metrics=metrics, band_importance=importance,
        randomisation=randomisation, summary_md=out_dir / "summary.md",
        df_idx=[int(s[2]) for s in samples], predicted=predicted, actual=actual,
        explained=explained, skipped=skipped)
    with atomic_file(out_dir / "report.json") as tmp:
        tmp.write_text(json.dumps({
            "dataset": dataset.NAME, "task": task, "df_idx": report.df_idx,
            "predicted": predicted, "actual": actual, "explained": explained,
            "metrics": json.loads(metrics.reset_index().to_json(orient="records")),
            "band_importance": importance, "randomisation": randomisation, "skipped": skipped,
            "options": {m: {k: v for k, v in o.items() if not torch.is_tensor(v)}
                        for m, o in options.items()}}, indent=1))
    with atomic_file(report.summary_md) as tmp:
        tmp.write_text(summary_markdown(report, dataset.NAME, task))
    return report


def _randomisation_figure(curves: dict[str, list[tuple[str, float]]], out_dir: Path) -> Path:
    fig, ax = plt.subplots(figsize=(6, 3.2))
    for method, curve in curves.items():
        ax.plot(range(1, len(curve) + 1), [v for _, v in curve], marker="o", label=method)
    first = next(iter(curves.values()))
    ax.set_xticks(range(1, len(first) + 1), [n for n, _ in first], rotation=70, fontsize=6)
    ax.set_ylabel("Spearman with trained maps")
    ax.set_xlabel("layers randomised, top down (cumulative)")
    ax.axhline(0, color="grey", lw=0.5)
    ax.legend(fontsize=7)
    return save_figure(fig, out_dir / "randomisation.png")


def summary_markdown(report: AttributionReport, dataset: str, task: str) -> str:
    """What a reader needs first: the metrics table, band importance and how to read them."""
    lines = [f"# Attribution report: {dataset} ({task})", "",
             f"{len(report.df_idx)} test images (df_idx {report.df_idx}); each map explains "
             f"the predicted class ({', '.join(report.explained)})"
             + (", its logits summed over the pixels predicted as it." if task == "segmentation"
                else "."), "",
             "## Metrics", "", report.metrics.round(4).to_markdown(), "",
             "Deletion AUC: lower is more faithful (the probability falls fast when the top "
             "pixels are replaced by the band means). Insertion AUC: higher is more faithful "
             "(restoring the top pixels onto a blurred image). After cascading randomisation "
             "a rank correlation near 0 means the maps depend on the trained weights."]
    for method, reason in report.skipped.items():
        lines += ["", f"**{method} does not apply to this model**: {reason}"]
    if "relevance_mass" in report.metrics:
        lines += ["", "Relevance mass: the share of positive attribution inside the explained "
                  "class's true pixels, against region_share, those pixels' share of the image."]
    lines += ["", "## Band importance", "",
              pd.DataFrame(report.band_importance).T.round(4).to_markdown(), "",
              "Shares of |attribution| per band; `ablation`: the probability lost when the band "
              "is set to its training mean."]
    return "\n".join(lines) + "\n"
