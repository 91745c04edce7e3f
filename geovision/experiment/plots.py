"""Plots of runs: loss and metric curves, learning rate, confusion matrices, comparisons."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from geovision.experiment.runfolders.folder import METRICS_FILE
from geovision.io.figures import plt, save_figure

LR_COLUMN = "train_lr_epoch"
CONFUSION_SUFFIX = "_confusion_matrix.csv"


def curve_names(metrics: pd.DataFrame) -> list[str]:
    """Quantities logged per epoch (loss first): `loss` for train_loss / val_loss, etc."""
    return sorted({c.split("_", 1)[1] for c in metrics.columns
                   if c.startswith(("train_", "val_")) and c != LR_COLUMN},
                  key=lambda n: (n != "loss", n))


def plot_curves(metrics: pd.DataFrame, out_dir: Path) -> list[Path]:
    """One PNG per quantity logged for train and/or val (loss first), against epoch."""
    out_dir = Path(out_dir)
    paths = []
    for name in curve_names(metrics):
        fig, ax = plt.subplots(figsize=(5, 3.2))
        for stage in ("train", "val"):
            column = f"{stage}_{name}"
            if column in metrics:
                ax.plot(metrics["epoch"], metrics[column], marker="o", label=stage)
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.set_title(name)
        ax.grid(alpha=0.3)
        ax.legend()
        paths.append(save_figure(fig, out_dir / f"{name}.png"))
    return paths


def plot_learning_rate(metrics: pd.DataFrame, path: Path) -> Path | None:
    """The learning rate of each epoch (warm-up and schedule at a glance); None if unlogged."""
    if LR_COLUMN not in metrics:
        return None
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.plot(metrics["epoch"], metrics[LR_COLUMN], marker="o")
    ax.set_xlabel("epoch")
    ax.set_ylabel("learning rate")
    ax.set_title("learning rate")
    ax.grid(alpha=0.3)
    return save_figure(fig, Path(path))


def plot_confusion_matrix(confusion: pd.DataFrame, path: Path, title: str = "",
                          xlabel: str = "predicted") -> Path:
    """Rows are the true classes, columns the predicted ones (or, for multi-label, each
    label's outcomes); colours are the share of each row (so rare classes show as clearly as
    common ones), cells show the counts."""
    counts = confusion.to_numpy()
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros(counts.shape, dtype=float),
                       where=totals > 0)
    rows, columns = counts.shape
    fig, ax = plt.subplots(figsize=(1.0 + 0.6 * max(columns, 4), 0.8 + 0.6 * rows))
    image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(columns), confusion.columns, rotation=45, ha="right")
    ax.set_yticks(range(rows), confusion.index)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("true")
    if rows <= 20 and columns <= 20:
        for i in range(rows):
            for j in range(columns):
                ax.text(j, i, f"{counts[i, j]:g}", ha="center", va="center", fontsize=8,
                        color="white" if shares[i, j] > 0.5 else "black")
    fig.colorbar(image, ax=ax, fraction=0.046, label="share of the row")
    ax.set_title(title or "confusion matrix")
    return save_figure(fig, Path(path))


def plot_comparison(curves: dict[str, pd.Series], metric: str, path: Path) -> Path:
    """One metric against epoch for several runs (each series indexed by epoch)."""
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for label, series in curves.items():
        ax.plot(series.index, series.to_numpy(), marker="o", label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    ax.set_title(metric)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return save_figure(fig, Path(path))


def read_confusion_matrix(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, index_col=0)


def plot_run(run_dir: Path, out_dir: Path | None = None) -> list[Path]:
    """Every plot of a run from its files: curves, learning rate, and the confusion matrix of
    each evaluated split. Written to `out_dir` (default: the run's plots/ folder)."""
    run_dir = Path(run_dir)
    out_dir = Path(out_dir) if out_dir else run_dir / "plots"
    paths: list[Path] = []
    if (run_dir / METRICS_FILE).is_file():
        metrics = pd.read_csv(run_dir / METRICS_FILE)
        paths += plot_curves(metrics, out_dir)
        lr = plot_learning_rate(metrics, out_dir / "learning_rate.png")
        paths += [lr] if lr else []
    for csv in sorted((run_dir / "evaluation").glob(f"*{CONFUSION_SUFFIX}")):
        split = csv.name.removesuffix(CONFUSION_SUFFIX)
        paths.append(plot_confusion_matrix(read_confusion_matrix(csv),
                                           out_dir / f"{split}_confusion_matrix.png",
                                           f"confusion matrix ({split} split)"))
    return paths
