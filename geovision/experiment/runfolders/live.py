"""Watching a run: redraw its plots from metrics.csv whenever the file changes.

metrics.csv is replaced atomically after every epoch, so each read sees a whole table. A
resumed run first drops the rows it will repeat, so the table may shrink; it is always drawn
as it is, and the watcher says so. It stops when the run finishes or fails, and keeps waiting
while a killed run may still be resumed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from geovision.experiment.plots import plot_curves, plot_learning_rate
from geovision.experiment.runfolders.folder import METRICS_FILE, run_state


@dataclass
class WatchReport:
    redraws: int = 0
    epochs_seen: list[int] = field(default_factory=list)  # rows after each redraw
    final_state: str = "unknown"


def describe_row(row: pd.Series) -> str:
    parts = [f"epoch {int(row['epoch'])}"]
    parts += [f"{key}={row[key]:.4g}" for key in row.index
              if key.startswith(("train_", "val_")) and pd.notna(row[key])]
    return "  ".join(parts)


def watch(run_dir: Path, out_dir: Path | None = None, *, interval: float = 5.0,
          max_redraws: int | None = None, timeout: float | None = None,
          echo: Callable[[str], None] = print) -> WatchReport:
    """Redraw the run's curves into `out_dir` (default: its plots/ folder) each time
    metrics.csv changes, checking every `interval` seconds, until the run is finished or
    failed, `max_redraws` redraws were made, or `timeout` seconds passed."""
    run_dir = Path(run_dir)
    out_dir = Path(out_dir) if out_dir else run_dir / "plots"
    path = run_dir / METRICS_FILE
    report = WatchReport()
    seen: tuple[int, int] | None = None
    rows = 0
    stopped_said = False
    started = time.monotonic()
    while True:
        state = run_state(run_dir)
        if path.is_file():
            stat = path.stat()
            signature = (stat.st_mtime_ns, stat.st_size)
            if signature != seen:
                seen = signature
                metrics = pd.read_csv(path)
                if len(metrics) < rows:
                    echo(f"run resumed: epochs from {len(metrics)} on are being trained again")
                rows = len(metrics)
                plot_curves(metrics, out_dir)
                plot_learning_rate(metrics, out_dir / "learning_rate.png")
                report.redraws += 1
                report.epochs_seen.append(rows)
                if rows:
                    echo(describe_row(metrics.iloc[-1]))
        if state == "stopped" and not stopped_said:
            echo("the run's process is gone (killed?); waiting for it to be resumed "
                 "(geovision train CONFIG --resume)")
        stopped_said = state == "stopped"
        report.final_state = state
        if state in ("finished", "failed"):
            echo(f"run {state}; plots in {out_dir}")
            return report
        if max_redraws is not None and report.redraws >= max_redraws:
            return report
        if timeout is not None and time.monotonic() - started > timeout:
            return report
        time.sleep(interval)
