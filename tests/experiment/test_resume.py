"""Crash safety: a training process killed mid-run resumes from its last checkpoint and ends
with every epoch exactly once, the same numbers as an uninterrupted run, and fresh plots."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import yaml

from geovision.experiment.runfolders.folder import FIT_FILE, list_runs, run_state

EPOCHS = 3
CONFIG = {
    "project": "crash", "name": "cnn", "task": "classification", "random_seed": 3,
    "dataset_name": "synthetic",
    "model": {"name": "small_cnn", "kwargs": {"width": 8, "depth": 2}},
    "data": {"batch_size": 16, "transforms": ["hflip"], "mixing": {"mixup_alpha": 0.2}},
    "optimizer": {"lr": 0.005}, "scheduler": {"name": "cosine", "warmup_epochs": 1},
    "trainer": {"max_epochs": EPOCHS, "accelerator": "cpu"}, "metrics": ["accuracy"],
}


def wait_for_first_checkpoint(home: Path, process: subprocess.Popen,
                              deadline: float = 90.0) -> Path:
    """The run folder, once epoch 0's row and checkpoint exist (epoch 1 is then under way)."""
    started = time.monotonic()
    while time.monotonic() - started < deadline:
        assert process.poll() is None, "training ended before it could be killed"
        for run_dir in list_runs(home, "crash"):
            metrics = run_dir / "metrics.csv"
            if (run_dir / "checkpoints" / "last.ckpt").is_file() and metrics.is_file():
                return run_dir
        time.sleep(0.05)
    raise AssertionError("no checkpoint appeared in time")


def test_sigkilled_run_resumes_cleanly(tmp_path, synthetic_root):
    home = tmp_path / "home"
    (home / "datasets").mkdir(parents=True)
    (home / "datasets" / "synthetic").symlink_to(synthetic_root)
    config_path = tmp_path / "crash.yaml"
    config_path.write_text(yaml.safe_dump(CONFIG))
    script = Path(sys.executable).parent / "geovision"
    log = (tmp_path / "killed.out").open("w")
    process = subprocess.Popen([str(script), "train", str(config_path), "--home", str(home)],
                               stdout=log, stderr=subprocess.STDOUT)
    try:
        run_dir = wait_for_first_checkpoint(home, process)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
        log.close()
    killed_at = time.time()
    assert process.returncode == -signal.SIGKILL
    assert run_state(run_dir) == "stopped"
    assert not (run_dir / FIT_FILE).exists()
    rows_before = pd.read_csv(run_dir / "metrics.csv")["epoch"].tolist()
    assert rows_before == list(range(len(rows_before))) and len(rows_before) < EPOCHS

    # The resume and the uninterrupted run are processes like the killed one: the same
    # numerics (threads, flags) as the epochs they are compared with.
    resumed = subprocess.run([str(script), "train", str(config_path), "--resume",
                              "--home", str(home)], capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-2000:]
    assert f"run directory: {run_dir}" in resumed.stdout
    assert list_runs(home, "crash") == [run_dir]  # continued, not started anew
    assert run_state(run_dir) == "finished"
    metrics = pd.read_csv(run_dir / "metrics.csv")
    assert metrics["epoch"].tolist() == list(range(EPOCHS))  # each epoch once, no gaps
    assert metrics["step"].tolist() == [18 * (e + 1) for e in range(EPOCHS)]
    pd.testing.assert_frame_equal(pd.read_parquet(run_dir / "metrics.parquet"), metrics)
    assert len(list(run_dir.glob("crash_train_*.log"))) == 2  # the first attempt and the resume
    for name in ("loss.png", "accuracy.png", "learning_rate.png", "test_confusion_matrix.png"):
        plot = run_dir / "plots" / name
        assert plot.stat().st_size > 1000 and plot.stat().st_mtime > killed_at, name

    # Checkpointed random states, epoch-seeded sampling: the same numbers as never stopping.
    other_home = tmp_path / "other"
    (other_home / "datasets").mkdir(parents=True)
    (other_home / "datasets" / "synthetic").symlink_to(synthetic_root)
    uninterrupted = subprocess.run([str(script), "train", str(config_path), "--home",
                                    str(other_home)], capture_output=True, text=True)
    assert uninterrupted.returncode == 0, uninterrupted.stderr[-2000:]
    [other_run] = list_runs(other_home, "crash")
    pd.testing.assert_frame_equal(pd.read_csv(other_run / "metrics.csv"), metrics)
