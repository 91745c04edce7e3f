"""What every workflow's LightningModule shares: the config, the model, augmentation, the
optimizer and its schedule, and the saved random state.

Every module takes the same arguments (the config as a dict, and the data's band count, class
count and image size), so any run can be rebuilt from its checkpoint, and offers
`evaluation_step`, the one computation behind validation and the evaluation of a run.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import lightning as L
import torch
from torch import nn

from geovision.experiment.config import ExperimentConfig
from geovision.experiment.workflows.augment import BatchAugment
from geovision.models.registry import create_model

RANDOM_STATE_KEY = "geovision_random_state"


@dataclass
class EvalStep:
    """One batch's loss and, for supervised modules, logits and class-index targets."""

    loss: torch.Tensor
    batch_size: int
    logits: torch.Tensor | None = None
    target: torch.Tensor | None = None


class ExperimentModule(L.LightningModule, ABC):
    """The config, the registry's model, batch augmentation, the optimizer and its schedule.

    Random generators owned by the module (augmentation, mixing, views) are saved in
    checkpoints, so a resumed run draws the same numbers as an uninterrupted one.
    """

    def __init__(self, config: dict[str, Any], in_channels: int, num_classes: int,
                 image_size: int | None = None) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.config = ExperimentConfig.model_validate(config)
        self.num_classes = num_classes
        # The config's validation checked the model against the workflow's role.
        self.model: nn.Module = create_model(self.config.model.name, in_channels=in_channels,
                                             num_classes=num_classes, image_size=image_size,
                                             **self.config.model.kwargs)
        self.augment = BatchAugment(self.config.data.transforms, self.config.random_seed)

    @abstractmethod
    def evaluation_step(self, batch: tuple) -> EvalStep:
        """The loss (and predictions) on a batch, without updating anything."""

    def start_evaluation(self) -> None:
        """Called before a pass of `evaluation_step` over a dataset (validation included)."""

    def on_validation_epoch_start(self) -> None:
        self.start_evaluation()

    def log_loss(self, stage: str, loss: torch.Tensor, batch_size: int, name: str = "loss",
                 prog_bar: bool = True) -> None:
        self.log(f"{stage}_{name}", loss, on_step=False, on_epoch=True, prog_bar=prog_bar,
                 batch_size=batch_size, sync_dist=True)

    def validation_step(self, batch: tuple, batch_idx: int) -> EvalStep:
        step = self.evaluation_step(batch)
        self.log_loss("val", step.loss, step.batch_size)
        return step

    def configure_optimizers(self) -> Any:
        return configure_optimizer(self.config, [p for p in self.parameters() if p.requires_grad])

    def random_sources(self) -> dict[str, Any]:
        """Objects with state_dict / load_state_dict whose randomness shapes training."""
        return {"augment": self.augment}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[RANDOM_STATE_KEY] = {name: source.state_dict()
                                        for name, source in self.random_sources().items()}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        sources = self.random_sources()
        for name, state in checkpoint.get(RANDOM_STATE_KEY, {}).items():
            if name in sources:
                sources[name].load_state_dict(state)


def make_optimizer(config: ExperimentConfig, params: Any) -> torch.optim.Optimizer:
    opt = config.optimizer
    if opt.name == "sgd":
        return torch.optim.SGD(params, lr=opt.lr, momentum=opt.momentum,
                               weight_decay=opt.weight_decay)
    if opt.name == "adam":
        return torch.optim.Adam(params, lr=opt.lr, betas=opt.betas,
                                weight_decay=opt.weight_decay)
    return torch.optim.AdamW(params, lr=opt.lr, betas=opt.betas, weight_decay=opt.weight_decay)


def lr_factor(config: ExperimentConfig, epoch: int) -> float:
    """The multiple of the base learning rate used in `epoch`: warm-up, then the schedule."""
    sched = config.scheduler
    if epoch < sched.warmup_epochs:
        progress = (epoch + 1) / (sched.warmup_epochs + 1)
        if sched.warmup == "linear":
            return progress
        return 0.5 * (1 - math.cos(math.pi * progress))
    after = epoch - sched.warmup_epochs
    if sched.name == "cosine":
        span = max(1, config.trainer.max_epochs - sched.warmup_epochs)
        return 0.5 * (1 + math.cos(math.pi * min(after, span) / span))
    if sched.name == "step":
        return sched.gamma ** (after // sched.step_size)
    return 1.0


def configure_optimizer(config: ExperimentConfig, params: Any) -> dict[str, Any]:
    """The optimizer and (per-epoch) learning-rate schedule, warm-up included, in the form
    Lightning's `configure_optimizers` returns."""
    optimizer = make_optimizer(config, params)
    if config.scheduler.name == "none" and config.scheduler.warmup_epochs == 0:
        return {"optimizer": optimizer}
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer,
                                                  lambda epoch: lr_factor(config, epoch))
    return {"optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}
