"""LightningModules for the supervised tasks; the model itself comes from the registry."""

from __future__ import annotations

import math
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
import torchmetrics
from torch import nn

from geovision.experiment.config import ExperimentConfig
from geovision.models.registry import build_model

IGNORE = -100
METRICS = ("accuracy", "f1", "jaccard")


def make_metrics(names: tuple[str, ...], num_classes: int,
                 task: str) -> torchmetrics.MetricCollection:
    """torchmetrics objects for the configured metric names (multiclass, macro averages)."""
    ignore = IGNORE if task == "segmentation" else None
    factories = {
        "accuracy": lambda: torchmetrics.classification.MulticlassAccuracy(
            num_classes, average="micro", ignore_index=ignore),
        "f1": lambda: torchmetrics.classification.MulticlassF1Score(
            num_classes, average="macro", ignore_index=ignore),
        "jaccard": lambda: torchmetrics.classification.MulticlassJaccardIndex(
            num_classes, average="macro", ignore_index=ignore),
    }
    unknown = sorted(set(names) - set(factories))
    if unknown:
        raise ValueError(f"Unknown metrics {unknown}; valid: {sorted(factories)}.")
    return torchmetrics.MetricCollection({name: factories[name]() for name in names})


def mask_to_index(one_hot: torch.Tensor) -> torch.Tensor:
    """(B, K, H, W) one-hot masks -> (B, H, W) indices, IGNORE where no class is set."""
    index = one_hot.argmax(dim=1)
    return torch.where(one_hot.sum(dim=1) > 0, index, torch.full_like(index, IGNORE))


class SupervisedModule(L.LightningModule):
    """Classification or segmentation, chosen by the config's task."""

    def __init__(self, config: dict[str, Any], in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.config = ExperimentConfig.model_validate(config)
        self.task = self.config.task
        self.model: nn.Module = build_model(self.config.model.name, in_channels, num_classes,
                                            self.task, **self.config.model.kwargs)
        metrics = make_metrics(self.config.metrics, num_classes, self.task)
        self.train_metrics = metrics.clone(prefix="train_")
        self.val_metrics = metrics.clone(prefix="val_")
        self.test_metrics = metrics.clone(prefix="test_")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def _targets(self, target: torch.Tensor) -> torch.Tensor:
        return mask_to_index(target) if self.task == "segmentation" else target

    def _step(self, batch: tuple, stage: str,
              metrics: torchmetrics.MetricCollection) -> torch.Tensor:
        image, target, _ = batch
        target = self._targets(target)
        logits = self(image)
        loss = F.cross_entropy(logits, target, ignore_index=IGNORE)
        metrics.update(logits.detach(), target)
        self.log(f"{stage}_loss", loss, on_step=False, on_epoch=True, prog_bar=True,
                 batch_size=image.shape[0], sync_dist=True)
        self.log_dict(metrics, on_step=False, on_epoch=True, batch_size=image.shape[0])
        return loss

    def training_step(self, batch: tuple, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train", self.train_metrics)

    def validation_step(self, batch: tuple, batch_idx: int) -> None:
        self._step(batch, "val", self.val_metrics)

    def test_step(self, batch: tuple, batch_idx: int) -> None:
        self._step(batch, "test", self.test_metrics)

    def predict_step(self, batch: tuple, batch_idx: int) -> torch.Tensor:
        return self(batch[0]).argmax(dim=1)

    def configure_optimizers(self) -> Any:
        return configure_optimizer(self.config, self.parameters())


def configure_optimizer(config: ExperimentConfig, params: Any) -> Any:
    """The optimizer and (per-epoch) learning-rate schedule, warm-up included."""
    opt = config.optimizer
    if opt.name == "sgd":
        optimizer = torch.optim.SGD(params, lr=opt.lr, momentum=opt.momentum,
                                    weight_decay=opt.weight_decay)
    elif opt.name == "adam":
        optimizer = torch.optim.Adam(params, lr=opt.lr, weight_decay=opt.weight_decay)
    else:
        optimizer = torch.optim.AdamW(params, lr=opt.lr, weight_decay=opt.weight_decay)
    sched = config.scheduler
    if sched.name == "none" and sched.warmup_epochs == 0:
        return optimizer
    epochs = config.trainer.max_epochs

    def factor(epoch: int) -> float:
        if epoch < sched.warmup_epochs:
            progress = (epoch + 1) / (sched.warmup_epochs + 1)
            if sched.warmup == "linear":
                return progress
            return 0.5 * (1 - math.cos(math.pi * progress))
        after = epoch - sched.warmup_epochs
        if sched.name == "cosine":
            span = max(1, epochs - sched.warmup_epochs)
            return 0.5 * (1 + math.cos(math.pi * min(after, span) / span))
        if sched.name == "step":
            return sched.gamma ** (after // sched.step_size)
        return 1.0

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}
