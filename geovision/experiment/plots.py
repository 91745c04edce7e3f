"""Plots of a run's metrics: loss curves and each configured metric per epoch."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from geovision.analysis.plots import plt, save_figure


def plot_curves(metrics: pd.DataFrame, out_dir: Path) -> list[Path]:
    """One PNG per quantity logged for both train and val (loss first), against epoch."""
    out_dir = Path(out_dir)
    names = sorted({c.split("_", 1)[1] for c in metrics.columns
                    if c.startswith(("train_", "val_")) and c != "train_lr_epoch"},
                   key=lambda n: (n != "loss", n))
    paths = []
    for name in names:
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
