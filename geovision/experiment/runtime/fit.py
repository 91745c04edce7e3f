"""Fitting a prepared run with Lightning: one process, or one DDP worker under torchrun."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint, StochasticWeightAveraging, TQDMProgressBar

from geovision.errors import MissingDataError
from geovision.experiment.config import ExperimentConfig
from geovision.experiment.runfolders.folder import (
    CHECKPOINTS,
    FIT_FILE,
    LAST_CHECKPOINT,
    METRICS_FILE,
    read_yaml,
    write_yaml,
)
from geovision.experiment.runfolders.inputs import load_run
from geovision.experiment.runtime.callbacks import (
    EpochMetricsWriter,
    PublishingCheckpointIO,
    RandomStateCheckpoint,
)
from geovision.experiment.runtime.data import make_loader, run_streaming_cache, split_datasets
from geovision.experiment.workflows import build_module
from geovision.io.memory import keep_freed_memory
from geovision.io.store import artifact_store
from geovision.layout import Layout

log = logging.getLogger(__name__)
SWA_CHECKPOINT = "swa.ckpt"


@dataclass
class FitResult:
    best_checkpoint: Path
    last_checkpoint: Path
    final_checkpoint: Path  # the one to evaluate: the averaged weights with SWA, else the best
    epochs: int
    world_size: int


def process_group() -> tuple[int, int]:
    """(rank, world size) as torchrun sets them; (0, 1) in a plain process."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def fit_run(run_dir: Path, *, resume: bool = False, progress: bool = True,
            on_epoch: Callable[[dict[str, Any]], None] | None = None) -> FitResult:
    """Train the run in `run_dir`, from its last checkpoint when `resume` (from scratch when
    it has none yet). With trainer.devices > 1 this must run under torchrun, one process per
    device (`geovision.experiment.runtime.distributed` launches it)."""
    keep_freed_memory()  # batch tensors reuse freed memory instead of page-faulting anew
    inputs = load_run(run_dir)
    config = inputs.config
    rank, world_size = process_group()
    if config.trainer.devices != world_size:
        raise RuntimeError(f"trainer.devices={config.trainer.devices} but this is one of "
                           f"{world_size} processes: multi-device runs start through "
                           "geovision.experiment.runtime.train.train, which launches torchrun.")
    L.seed_everything(config.random_seed, workers=True, verbose=False)
    datasets = split_datasets(config, inputs.dataset_cls, inputs.root, inputs.df,
                              inputs.image_transform(), inputs.shards_dir,
                              splits=("train", "val"),
                              streaming_cache=run_streaming_cache(run_dir))
    image_size = int(datasets["train"][0][0].shape[-1])
    checkpoint_dir = Path(run_dir) / CHECKPOINTS
    last = checkpoint_dir / LAST_CHECKPOINT
    resume_from = last if resume and last.is_file() else None
    # A resumed fit takes every weight from its checkpoint, never the starting weights.
    module = build_module(config, len(inputs.dataset_cls.BANDS),
                          len(inputs.dataset_cls.CLASS_NAMES), image_size,
                          weights=inputs.starting_weights() if resume_from is None else None,
                          bands=inputs.dataset_cls.BANDS)
    trainer, checkpoints = make_trainer(config, Path(run_dir), world_size=world_size,
                                        progress=progress, on_epoch=on_epoch)
    if resume_from is not None:
        _forget_checkpoints_after(last)
        log.info("resuming %s from %s", run_dir, last)
    loaders = {split: make_loader(datasets[split], config, shuffle=split == "train", rank=rank,
                                  world_size=world_size) for split in ("train", "val")}
    trainer.fit(module, loaders["train"], loaders["val"], ckpt_path=resume_from)
    final = Path(checkpoints.best_model_path or checkpoints.last_model_path)
    if config.swa.enabled:
        final = checkpoint_dir / SWA_CHECKPOINT
        trainer.save_checkpoint(final)  # every rank takes part; rank 0 writes
    result = FitResult(best_checkpoint=Path(checkpoints.best_model_path or last),
                       last_checkpoint=last, final_checkpoint=final,
                       epochs=min(trainer.current_epoch, config.trainer.max_epochs),
                       world_size=world_size)
    if trainer.is_global_zero:
        write_yaml(Path(run_dir) / FIT_FILE, {
            "best_checkpoint": str(result.best_checkpoint),
            "last_checkpoint": str(result.last_checkpoint),
            "final_checkpoint": str(result.final_checkpoint),
            "epochs": result.epochs, "world_size": world_size})
    return result


def make_trainer(config: ExperimentConfig, run_dir: Path, *, world_size: int = 1,
                 progress: bool = True,
                 on_epoch: Callable[[dict[str, Any]], None] | None = None,
                 ) -> tuple[L.Trainer, ModelCheckpoint]:
    """The Lightning Trainer of a run and its checkpoint callback: metrics rows, random
    states and checkpoints every epoch, SWA when configured, progress bars that stay."""
    checkpoints = ModelCheckpoint(
        dirpath=run_dir / CHECKPOINTS, filename="epoch{epoch:03d}",
        auto_insert_metric_name=False, monitor=config.checkpoint.monitor,
        mode=config.checkpoint.mode, save_top_k=config.checkpoint.save_top_k,
        every_n_epochs=config.checkpoint.every_n_epochs, save_last=True,
        save_on_train_epoch_end=True)
    callbacks: list[L.Callback] = []
    if config.swa.enabled:
        callbacks.append(StochasticWeightAveraging(
            swa_lrs=config.swa.lr, swa_epoch_start=config.swa.start_epoch + 1,
            annealing_epochs=config.swa.annealing_epochs,
            annealing_strategy=config.swa.annealing))
    callbacks += [EpochMetricsWriter(run_dir / METRICS_FILE, config.trainer.max_epochs,
                                     on_row=on_epoch),
                  RandomStateCheckpoint(), checkpoints]
    if progress:
        callbacks.append(TQDMProgressBar(leave=True))  # bars stay on screen after the run
    # With a remote artifact root every checkpoint is published as soon as it is saved.
    store = artifact_store(Layout.of_run(run_dir).home)
    trainer = L.Trainer(
        default_root_dir=run_dir,
        max_epochs=config.trainer.max_epochs,
        accelerator=config.trainer.accelerator,
        devices=config.trainer.devices,
        strategy="ddp" if world_size > 1 else "auto",
        precision=config.trainer.precision,
        accumulate_grad_batches=config.trainer.accumulate_grad_batches,
        gradient_clip_val=config.trainer.gradient_clip_val,
        deterministic=config.trainer.deterministic,
        logger=False,
        callbacks=callbacks,
        enable_progress_bar=progress,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        use_distributed_sampler=False,  # make_loader already gives each process its share
        plugins=[PublishingCheckpointIO(store)] if store is not None else None,
    )
    return trainer, checkpoints


@contextmanager
def torch_flags_restored() -> Iterator[None]:
    """Give back the process-wide torch flags a Trainer sets (`deterministic=True` turns on
    deterministic algorithms for the whole process), so that a notebook or an in-process
    Dagster step that trains and then explains (captum's DeepLift unpools) is not left with
    them."""
    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    benchmark = torch.backends.cudnn.benchmark
    workspace = os.environ.get("CUBLAS_WORKSPACE_CONFIG")
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)
        torch.backends.cudnn.benchmark = benchmark
        if workspace is None:
            os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)
        else:
            os.environ["CUBLAS_WORKSPACE_CONFIG"] = workspace


def read_fit_result(run_dir: Path) -> FitResult:
    path = Path(run_dir) / FIT_FILE
    if not path.is_file():
        raise MissingDataError(f"{path} not found: the run in {run_dir} has not finished "
                               "fitting; resume it with `geovision train CONFIG --resume`.")
    data = read_yaml(path)
    return FitResult(best_checkpoint=Path(data["best_checkpoint"]),
                     last_checkpoint=Path(data["last_checkpoint"]),
                     final_checkpoint=Path(data["final_checkpoint"]),
                     epochs=int(data["epochs"]), world_size=int(data["world_size"]))


def _forget_checkpoints_after(last: Path) -> None:
    """Delete epoch checkpoints written after `last` (by the interrupted attempt, for epochs
    that will be trained again), so the resumed run saves them under the same names."""
    for path in last.parent.glob("*.ckpt"):
        if path != last and path.stat().st_mtime_ns > last.stat().st_mtime_ns:
            path.unlink()
