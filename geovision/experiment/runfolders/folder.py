"""Run directories: `Layout.runs(project, name)/<timestamp>/`, one per run.

Everything needed to understand, resume or evaluate a run after the fact lives there:

    hparams.yaml             config, config hash, dataset facts, inputs (written first)
    dataset_index.parquet    the df the run was split by
    status.yaml              running / finished / failed, with the writer's pid and host
    metrics.csv / .parquet   one row per epoch, rewritten atomically after each
    checkpoints/             Lightning checkpoints, last.ckpt among them
    fit.yaml                 which checkpoints the fit produced (best, last, evaluated)
    evaluation/              <split>_metrics.yaml and <split>_confusion_matrix.csv
    plots/                   curves, learning rate, confusion matrices
    <project>_<command>_<timestamp>.log
"""

from __future__ import annotations

import logging
import os
import socket
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from geovision.errors import MissingDataError
from geovision.io.atomic import atomic_file
from geovision.layout import Layout

TIMESTAMP_FORMAT = "%Y%m%d-%H%M%S"
HPARAMS_FILE = "hparams.yaml"
INDEX_FILE = "dataset_index.parquet"
STATUS_FILE = "status.yaml"
FIT_FILE = "fit.yaml"
METRICS_FILE = "metrics.csv"
CHECKPOINTS = "checkpoints"
LAST_CHECKPOINT = "last.ckpt"


def runs_root(home: Path | None = None) -> Path:
    return Layout(home).runs()


def timestamp() -> str:
    return datetime.now(UTC).strftime(TIMESTAMP_FORMAT)


def new_run_dir(project: str, name: str, home: Path | None = None) -> Path:
    """A fresh, timestamped run folder (seconds resolution; waits out a clash)."""
    parent = Layout(home).runs(project, name)
    parent.mkdir(parents=True, exist_ok=True)
    while True:
        run_dir = parent / timestamp()
        try:
            run_dir.mkdir()
            return run_dir
        except FileExistsError:
            time.sleep(0.2)


def write_yaml(path: Path, data: dict[str, Any]) -> None:
    with atomic_file(path) as tmp:
        tmp.write_text(yaml.safe_dump(data, sort_keys=False))


def read_yaml(path: Path) -> dict[str, Any]:
    return yaml.safe_load(Path(path).read_text()) or {}


def read_hparams(run_dir: Path) -> dict[str, Any]:
    path = Path(run_dir) / HPARAMS_FILE
    if not path.is_file():
        raise MissingDataError(f"{path} not found: is {run_dir} a run directory?")
    return read_yaml(path)


# ----- log file and status ----------------------------------------------------------------


def log_file(run_dir: Path, project: str, command: str, stamp: str | None = None) -> Path:
    """`<project>_<command>_<stamp>.log` in the run directory: the run's own timestamp unless
    given (a resumed run gets a file of its own)."""
    return Path(run_dir) / f"{project}_{command}_{stamp or Path(run_dir).name}.log"


def attach_log_file(path: Path) -> logging.Handler:
    """Send geovision's and Lightning's log records to `path` (appending)."""
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


def write_status(run_dir: Path, state: str) -> None:
    """Record what the run is doing, and which process does it."""
    write_yaml(Path(run_dir) / STATUS_FILE, {
        "state": state, "pid": os.getpid(), "host": socket.gethostname(),
        "updated": datetime.now(UTC).isoformat(timespec="seconds")})


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def run_state(run_dir: Path) -> str:
    """finished, failed, running, or stopped (its process on this host is gone: killed or
    crashed, so it can be resumed); unknown when no status was written."""
    path = Path(run_dir) / STATUS_FILE
    if not path.is_file():
        return "unknown"
    status = read_yaml(path)
    state = status.get("state", "unknown")
    if (state == "running" and status.get("host") == socket.gethostname()
            and not _alive(int(status.get("pid", 0)))):
        return "stopped"
    return state


# ----- finding runs -----------------------------------------------------------------------


def list_runs(home: Path | None = None, project: str | None = None) -> list[Path]:
    """Every run directory (one with hparams.yaml), by project, name and time."""
    root = runs_root(home)
    pattern = f"{project}/*/*/{HPARAMS_FILE}" if project else f"*/*/*/{HPARAMS_FILE}"
    return sorted(path.parent for path in root.glob(pattern))


def latest_run(project: str, name: str, config_hash: str,
               home: Path | None = None) -> Path | None:
    """The newest run of this project/name made from a config with this hash."""
    for run_dir in reversed(list_runs(home, project)):
        if run_dir.parent.name == name and \
                read_hparams(run_dir).get("config_hash") == config_hash:
            return run_dir
    return None


def resolve_run(spec: str | os.PathLike, home: Path | None = None) -> Path:
    """A run directory from a path, or from `project/name[/timestamp]` under the runs root
    (the newest run when the timestamp is left out)."""
    candidates = [Path(spec), runs_root(home) / spec]
    for path in candidates:
        if (path / HPARAMS_FILE).is_file():
            return path.resolve()
        runs = sorted(p.parent for p in path.glob(f"*/{HPARAMS_FILE}")) if path.is_dir() else []
        if runs:
            return runs[-1].resolve()
    raise MissingDataError(f"No run directory {spec!r}: give a run folder or "
                           f"project/name[/timestamp] under {runs_root(home)} "
                           "(`geovision runs list` shows them).")


# ----- metrics ----------------------------------------------------------------------------


def _write_metrics(path: Path, table: pd.DataFrame) -> None:
    with atomic_file(path) as tmp:
        table.to_csv(tmp, index=False)
    with atomic_file(path.with_suffix(".parquet")) as tmp:
        table.to_parquet(tmp, index=False)


def append_epoch_row(path: Path, row: dict[str, Any]) -> pd.DataFrame:
    """Add one epoch's row to metrics.csv (and metrics.parquet), replacing any row for that
    epoch or later.

    A resumed run re-trains from its checkpoint's epoch, so rows at or past it are stale; this
    keeps every epoch exactly once. The files are replaced atomically so a crash never
    truncates them.
    """
    path = Path(path)
    previous = pd.read_csv(path) if path.is_file() else pd.DataFrame()
    if "epoch" in previous:
        previous = previous[previous["epoch"] < row["epoch"]]
    table = pd.concat([previous, pd.DataFrame([row])], ignore_index=True)
    _write_metrics(path, table)
    return table


def drop_epochs_from(path: Path, epoch: int) -> None:
    """Forget rows of `epoch` and later (a resumed run is about to write them again)."""
    path = Path(path)
    if not path.is_file():
        return
    table = pd.read_csv(path)
    if "epoch" in table and (table["epoch"] >= epoch).any():
        _write_metrics(path, table[table["epoch"] < epoch].reset_index(drop=True))


def read_metrics(run_dir: Path) -> pd.DataFrame:
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        raise MissingDataError(f"{path} not found: is {run_dir} a run directory?")
    return pd.read_csv(path)
