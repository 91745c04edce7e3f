"""Lightning callbacks (and the checkpoint writer) that keep the run directory complete and
resumable."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from geovision.experiment.runfolders.folder import append_epoch_row, drop_epochs_from
from geovision.io.store import ArtifactStore


class EpochMetricsWriter(L.Callback):
    """After every training epoch, write one row to metrics.csv (and .parquet): epoch, step,
    the learning rate (`train_lr_epoch`) and every epoch-level train and val value logged.

    It runs before the checkpoint of the same epoch is saved, so a run killed in between
    re-trains that epoch on resume and its row is replaced; a resumed run first drops the rows
    of the epochs it is about to repeat. Epochs at or past `max_epochs` (the extra pass
    stochastic weight averaging makes to refresh batch-norm statistics) get no row.
    """

    def __init__(self, path: Path, max_epochs: int,
                 on_row: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.path = Path(path)
        self.max_epochs = max_epochs
        self.on_row = on_row
        self._epoch_lr: float | None = None

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.is_global_zero:
            drop_epochs_from(self.path, trainer.current_epoch)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Epoch-interval schedulers step before epoch-end hooks run: read the rate used now.
        if trainer.optimizers:
            self._epoch_lr = float(trainer.optimizers[0].param_groups[0]["lr"])

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if (trainer.sanity_checking or not trainer.is_global_zero
                or trainer.current_epoch >= self.max_epochs):
            return
        row: dict[str, Any] = {"epoch": trainer.current_epoch, "step": trainer.global_step}
        if self._epoch_lr is not None:
            row["train_lr_epoch"] = self._epoch_lr
        for key, value in sorted(trainer.callback_metrics.items()):
            if key.startswith(("train_", "val_")) and value.numel() == 1:
                row[key] = float(value)
        append_epoch_row(self.path, row)
        if self.on_row is not None:
            self.on_row(row)


class RandomStateCheckpoint(L.Callback):
    """Saves the global Python, NumPy and torch random states in every checkpoint and restores
    them on resume, so dropout, sampling and worker seeds continue as if never interrupted."""

    def state_dict(self) -> dict[str, Any]:
        # Tensors and plain values only, so checkpoints load with torch.load(weights_only=True).
        name, keys, position, has_gauss, gauss = np.random.get_state()
        return {"python": random.getstate(), "torch": torch.get_rng_state(),
                "numpy": {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)),
                          "position": position, "has_gauss": has_gauss, "gauss": gauss}}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        random.setstate(state_dict["python"])
        torch.set_rng_state(state_dict["torch"])
        numpy = state_dict["numpy"]
        np.random.set_state((numpy["name"], numpy["keys"].numpy().astype(np.uint32),
                             numpy["position"], numpy["has_gauss"], numpy["gauss"]))


class PublishingCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint writer, publishing each checkpoint to the remote artifact root
    right after it is saved (and withdrawing the ones Lightning prunes), so a run that dies
    on one machine can resume from its last checkpoint on another."""

    def __init__(self, store: ArtifactStore) -> None:
        super().__init__()
        self.store = store

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path,
                        storage_options: Any | None = None) -> None:
        super().save_checkpoint(checkpoint, path, storage_options)
        self.store.publish(path)

    def remove_checkpoint(self, path: str | Path) -> None:
        super().remove_checkpoint(path)
        self.store.unpublish(path)
