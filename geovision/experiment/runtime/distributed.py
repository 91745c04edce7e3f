"""Multi-device training: torchrun starts one process per device, each fits the same run.

    python -m torch.distributed.run --standalone --nproc_per_node=N \\
        -m geovision.experiment.runtime.distributed --run-dir RUN [--resume] [--no-progress]

Each process reads the prepared run directory and joins the DDP process group (gloo on CPU,
NCCL on GPUs); rank 0 alone writes metrics, checkpoints and fit.yaml. The caller launches the
command (`launch`) and evaluates the run afterwards in its own single process.

When a Dagster Pipes session started the command (the trained_model asset does, for
trainer.devices > 1), rank 0 streams each epoch to Dagster's log and reports the
materialization once. That uses `dagster_pipes`, the dependency-free protocol package made
for code that runs outside Dagster; it is imported only then, never by the rest of geovision.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from geovision.experiment.runfolders.folder import attach_log_file, detach_log_file
from geovision.experiment.runtime.fit import FitResult, fit_run, process_group, read_fit_result

PIPES_CONTEXT_ENV = "DAGSTER_PIPES_CONTEXT"
Launcher = Callable[[list[str]], None]


def torchrun_command(run_dir: Path, nproc: int, *, resume: bool = False,
                     progress: bool = True, log_path: Path | None = None) -> list[str]:
    """The torchrun command line that fits `run_dir` on `nproc` processes of this machine."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc_per_node={nproc}", "-m", "geovision.experiment.runtime.distributed",
               "--run-dir", str(run_dir)]
    if log_path is not None:
        command += ["--log-file", str(log_path)]
    if resume:
        command.append("--resume")
    if not progress:
        command.append("--no-progress")
    return command


def run_subprocess(command: list[str]) -> None:
    done = subprocess.run(command)
    if done.returncode != 0:
        raise RuntimeError(f"Distributed training failed (exit code {done.returncode}); its "
                           "output is above and in the run's log file.")


def launch(run_dir: Path, nproc: int, *, resume: bool = False, progress: bool = True,
           log_path: Path | None = None, launcher: Launcher | None = None) -> FitResult:
    """Fit `run_dir` on `nproc` processes and return what rank 0 recorded. `launcher` runs the
    command (default: a plain subprocess; the Dagster asset passes Dagster Pipes)."""
    (launcher or run_subprocess)(torchrun_command(run_dir, nproc, resume=resume,
                                                  progress=progress, log_path=log_path))
    return read_fit_result(run_dir)


def _report_to_dagster(run_dir: Path, resume: bool, progress: bool) -> FitResult:
    from dagster_pipes import open_dagster_pipes

    from geovision.hashing import sha256_file

    with open_dagster_pipes() as pipes:
        def log_epoch(row: dict) -> None:
            pipes.log.info("epoch " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float)
                                                else f"{k}={v}" for k, v in row.items()))

        result = fit_run(run_dir, resume=resume, progress=progress, on_epoch=log_epoch)
        pipes.report_asset_materialization(
            data_version=sha256_file(result.final_checkpoint),
            metadata={"world_size": result.world_size, "epochs": result.epochs,
                      "final_checkpoint": {"raw_value": str(result.final_checkpoint),
                                           "type": "path"},
                      "reported_by_rank": 0})
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="One DDP worker of a prepared run.")
    parser.add_argument("--run-dir", type=Path, required=True)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--log-file", type=Path, help="the run's log file (rank 0 appends)")
    args = parser.parse_args(argv)
    rank, _ = process_group()
    handler = attach_log_file(args.log_file) if rank == 0 and args.log_file else None
    try:
        if rank == 0 and PIPES_CONTEXT_ENV in os.environ:
            _report_to_dagster(args.run_dir, args.resume, not args.no_progress)
        else:
            fit_run(args.run_dir, resume=args.resume, progress=not args.no_progress)
    finally:
        if handler is not None:
            detach_log_file(handler)
    return 0


if __name__ == "__main__":
    sys.exit(main())
