"""MoCo workflow: contrastive pretraining on a dataset's images (labels unused)."""

from __future__ import annotations

from typing import Any

import torch

from geovision.experiment.workflows import UNLABELLED_TASKS, Workflow, register_workflow
from geovision.experiment.workflows.augment import ViewSampler
from geovision.experiment.workflows.base import EvalStep, ExperimentModule
from geovision.models.moco import info_nce


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
        self.views = ViewSampler(seed + 1)
        self.eval_views = ViewSampler(seed + 2)

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
    description="contrastive pretraining (momentum contrast)"))
