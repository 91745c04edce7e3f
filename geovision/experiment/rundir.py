"""Run directories: `$GEOVISION_HOME/runs/<project>/<name>/<timestamp>/`, one per run.

Everything needed to understand a run after the fact lives there: hparams.yaml (written first),
metrics.csv (one row per epoch, rewritten atomically after each), checkpoints and a log file.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from geovision.io.atomic import atomic_file
from geovision.paths import geovision_home

TIMESTAMP_FORMAT = "%Y%m%d-%H%M%S"


def runs_root(home: Path | None = None) -> Path:
    return (home or geovision_home()) / "runs"


def new_run_dir(project: str, name: str, home: Path | None = None) -> Path:
    """A fresh, timestamped run folder (seconds resolution; waits out a clash)."""
    parent = runs_root(home) / project / name
    parent.mkdir(parents=True, exist_ok=True)
    while True:
        stamp = datetime.now(UTC).strftime(TIMESTAMP_FORMAT)
        run_dir = parent / stamp
        try:
            run_dir.mkdir()
            return run_dir
        except FileExistsError:
            time.sleep(0.2)


def write_yaml(path: Path, data: dict[str, Any]) -> None:
    with atomic_file(path) as tmp:
        tmp.write_text(yaml.safe_dump(data, sort_keys=False))


def attach_log_file(run_dir: Path, project: str, command: str) -> logging.Handler:
    """Send geovision's and Lightning's log records to `<project>_<command>_<timestamp>.log`."""
    path = run_dir / f"{project}_{command}_{run_dir.name}.log"
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    for name in ("geovision", "lightning", "lightning.pytorch"):
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        if logger.level == logging.NOTSET or logger.level > logging.INFO:
            logger.setLevel(logging.INFO)
    return handler


def detach_log_file(handler: logging.Handler) -> None:
    for name in ("geovision", "lightning", "lightning.pytorch"):
        logging.getLogger(name).removeHandler(handler)
    handler.close()


def append_epoch_row(path: Path, row: dict[str, Any]) -> pd.DataFrame:
    """Add one epoch's row to metrics.csv, replacing any row for that epoch or later.

    A resumed run re-trains from its checkpoint's epoch, so rows at or past it are stale; this
    keeps every epoch exactly once. The file is replaced atomically so a crash never truncates it.
    """
    previous = pd.read_csv(path) if path.is_file() else pd.DataFrame()
    if "epoch" in previous:
        previous = previous[previous["epoch"] < row["epoch"]]
    table = pd.concat([previous, pd.DataFrame([row])], ignore_index=True)
    with atomic_file(path) as tmp:
        table.to_csv(tmp, index=False)
    return table


def read_metrics(run_dir: Path) -> pd.DataFrame:
    path = Path(run_dir) / "metrics.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: is {run_dir} a run directory?")
    return pd.read_csv(path)
