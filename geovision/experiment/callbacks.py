"""Lightning callbacks that keep the run directory complete."""

from __future__ import annotations

from pathlib import Path

import lightning as L

from geovision.experiment.rundir import append_epoch_row


class EpochMetricsWriter(L.Callback):
    """After every training epoch, write one row to metrics.csv: epoch, step, the learning
    rate (`train_lr_epoch`) and every epoch-level metric logged so far (train and val)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._epoch_lr: float | None = None

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Epoch-interval schedulers step before epoch-end hooks run: read the rate used now.
        if trainer.optimizers:
            self._epoch_lr = float(trainer.optimizers[0].param_groups[0]["lr"])

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        row: dict[str, float | int] = {"epoch": trainer.current_epoch,
                                       "step": trainer.global_step}
        if self._epoch_lr is not None:
            row["train_lr_epoch"] = self._epoch_lr
        for key, value in sorted(trainer.callback_metrics.items()):
            if key.startswith(("train_", "val_")) and value.numel() == 1:
                row[key] = float(value)
        append_epoch_row(self.path, row)
