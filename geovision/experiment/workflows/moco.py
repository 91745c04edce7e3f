"""MoCo workflow: contrastive pretraining on a dataset's images (labels unused)."""

from __future__ import annotations

from typing import Any

import torch
from pydantic import Field, field_validator

from geovision.experiment.config import WorkflowSettings
from geovision.experiment.workflows import UNLABELLED_TASKS, Workflow, register_workflow
from geovision.experiment.workflows.augment import ViewSampler
from geovision.experiment.workflows.base import EvalStep, ExperimentModule
from geovision.models.moco import info_nce


class MoCoSettings(WorkflowSettings):
    """How the two views of an image differ (the ViewSampler): the harder the views, the more
    the encoder must ignore. Validation and evaluation draw their views the same way."""

    crop_scale: tuple[float, float] = Field(
        (0.35, 1.0), description="range of the share of the image's area a random crop keeps")
    jitter: float = Field(0.2, ge=0, lt=1, description="per-band gain drawn from 1 +/- jitter "
                          "and offset from +/- jitter (standardised band units)")
    noise: float = Field(0.1, ge=0, description="standard deviation of the pixel noise added "
                         "(standardised band units)")

    @field_validator("crop_scale")
    @classmethod
    def _share(cls, scale: tuple[float, float]) -> tuple[float, float]:
        low, high = scale
        if not 0 < low <= high <= 1:
            raise ValueError(f"{list(scale)} must be [low, high] with 0 < low <= high <= 1")
        return scale


class MoCoModule(ExperimentModule):
    """Two random views per image; the query encoder learns to find the key of its own image
    among the queue's negatives (InfoNCE). The key encoder follows by momentum and the keys of
    every batch (from all processes under DDP) enter the queue.

    The training loss depends on what the queue holds (early on, random vectors that are
    easy to tell apart), so validation and evaluation measure InfoNCE against the other images
    of the batch instead, with views from a generator reset each time: losses of different
    epochs and checkpoints then compare like with like.
    """

    def __init__(self, config: dict[str, Any], in_channels: int, num_classes: int,
                 image_size: int | None = None) -> None:
        super().__init__(config, in_channels, num_classes, image_size)
        seed = self.config.random_seed
        settings = self.config.settings_as(MoCoSettings)
        views = {"scale": settings.crop_scale, "jitter": settings.jitter,
                 "noise": settings.noise}
        self.views = ViewSampler(seed + 1, **views)
        self.eval_views = ViewSampler(seed + 2, **views)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def training_step(self, batch: tuple, batch_idx: int) -> torch.Tensor:
        images = self.augment(batch[0])[0]
        queries, keys_view = self.views(images), self.views(images)
        self.model.update_momentum_encoder()
        logits, keys = self.model.contrastive_logits(queries, keys_view)
        loss = info_nce(logits)
        if self.trainer.world_size > 1:
            keys = self.all_gather(keys).flatten(0, 1)
        self.model.enqueue(keys)
        self.log_loss("train", loss, images.shape[0])
        return loss

    def start_evaluation(self) -> None:
        self.eval_views.reset()

    def evaluation_step(self, batch: tuple) -> EvalStep:
        images = batch[0]
        logits = self.model.batch_logits(self.eval_views(images), self.eval_views(images))
        positives = torch.arange(images.shape[0], device=images.device)
        return EvalStep(info_nce(logits, positives), images.shape[0])

    def random_sources(self) -> dict[str, Any]:
        return super().random_sources() | {"views": self.views}


register_workflow(Workflow(
    name="moco", module=MoCoModule, tasks=UNLABELLED_TASKS, uses_labels=False,
    settings=MoCoSettings,
    description="contrastive pretraining (momentum contrast)"))
