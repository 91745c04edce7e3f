"""Summaries of run directories: for listing runs and comparing one metric across them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from geovision.errors import ConfigError
from geovision.experiment.runfolders.folder import (
    METRICS_FILE,
    read_hparams,
    read_yaml,
    run_state,
)


def run_label(run_dir: Path) -> str:
    """`project/name/timestamp`."""
    run_dir = Path(run_dir)
    return f"{run_dir.parent.parent.name}/{run_dir.parent.name}/{run_dir.name}"


def evaluation_metrics(run_dir: Path, split: str = "test") -> dict[str, float]:
    path = Path(run_dir) / "evaluation" / f"{split}_metrics.yaml"
    return read_yaml(path).get("metrics", {}) if path.is_file() else {}


def summarize_run(run_dir: Path) -> dict[str, Any]:
    """One row for `geovision runs list`: state, epochs done of planned, dataset, workflow,
    the best validation loss and the test metrics."""
    run_dir = Path(run_dir)
    hparams = read_hparams(run_dir)
    config = hparams["config"]
    metrics_path = run_dir / METRICS_FILE
    metrics = pd.read_csv(metrics_path) if metrics_path.is_file() else pd.DataFrame()
    row: dict[str, Any] = {
        "run": run_label(run_dir),
        "state": run_state(run_dir),
        "epochs": f"{len(metrics)}/{config['trainer']['max_epochs']}",
        "dataset": config["dataset_name"],
        "workflow": config.get("workflow", "supervised"),
        "best_val_loss": float(metrics["val_loss"].min()) if "val_loss" in metrics else None,
    }
    row |= evaluation_metrics(run_dir)
    return row


def list_table(run_dirs: list[Path]) -> pd.DataFrame:
    return pd.DataFrame([summarize_run(run_dir) for run_dir in run_dirs])


def higher_is_better(metric: str) -> bool:
    return "loss" not in metric


@dataclass
class Comparison:
    metric: str
    table: pd.DataFrame  # one row per run: last, best, best_epoch
    curves: dict[str, pd.Series]  # per run, indexed by epoch (empty for test_ metrics)


def compare_runs(metric: str, run_dirs: list[Path]) -> Comparison:
    """`metric` across runs: a metrics.csv column (last and best value, and when) or a
    metric of the test evaluation (`test_...`)."""
    rows, curves, available = [], {}, set()
    for run_dir in run_dirs:
        label = run_label(run_dir)
        if metric.startswith("test_"):
            values = evaluation_metrics(run_dir)
            available |= set(values)
            if metric in values:
                rows.append({"run": label, "last": values[metric], "best": values[metric],
                             "best_epoch": None})
            continue
        metrics_path = Path(run_dir) / METRICS_FILE
        metrics = pd.read_csv(metrics_path) if metrics_path.is_file() else pd.DataFrame()
        available |= {c for c in metrics.columns if c not in ("epoch", "step")}
        if metric not in metrics:
            continue
        series = metrics.set_index("epoch")[metric].dropna()
        best_epoch = series.idxmax() if higher_is_better(metric) else series.idxmin()
        curves[label] = series
        rows.append({"run": label, "last": float(series.iloc[-1]),
                     "best": float(series[best_epoch]), "best_epoch": int(best_epoch)})
    if not rows:
        raise ConfigError(f"No run has {metric!r}; available: "
                          f"{', '.join(sorted(available)) or 'none (no metrics written yet)'}.")
    return Comparison(metric=metric, table=pd.DataFrame(rows), curves=curves)
