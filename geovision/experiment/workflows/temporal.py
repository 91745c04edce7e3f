"""The temporal workflow: supervised segmentation of time series (TimeSeries batches) with a
registered model that takes them (small_utae; single_date_unet, its baseline)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from geovision.data.temporal import TimeSeries
from geovision.errors import ConfigError
from geovision.experiment.metrics import update_metrics
from geovision.experiment.workflows import Workflow, register_workflow
from geovision.experiment.workflows.base import EvalStep
from geovision.experiment.workflows.supervised import SupervisedModule

if TYPE_CHECKING:
    from geovision.experiment.config import RecipeConfig


def _series(batch_image: object) -> TimeSeries:
    if not isinstance(batch_image, TimeSeries):
        raise ConfigError("workflow: temporal trains on time series datasets (pastis_r, "
                          "synthetic_temporal, ...); this dataset's samples are single images: "
                          "use workflow: supervised.")
    return batch_image


class TemporalModule(SupervisedModule):
    """Supervised segmentation over dated image series. Flips and quarter turns apply to
    every date of a series and its mask alike; padding dates stay zero."""

    def evaluation_step(self, batch: tuple) -> EvalStep:
        series, target, df_idx = batch
        return super().evaluation_step((_series(series), target, df_idx))

    def training_step(self, batch: tuple, batch_idx: int) -> torch.Tensor:
        series, target, _ = batch
        series = _series(series)
        images = series.images
        b, t, c, h, w = images.shape
        flat, mask = self.augment(images.reshape(b, t * c, h, w), target)
        series = series._replace(images=flat.reshape(b, t, c, *flat.shape[-2:]))
        target = self._targets(mask)
        logits = self(series)
        loss, _ = self._loss(logits, target, images)  # cross-entropy: _check refuses pairs
        update_metrics(self.train_metrics, logits.detach(), target)
        self.log_loss("train", loss, b)
        self.log_dict(self.train_metrics, on_step=False, on_epoch=True, batch_size=b)
        return loss


def _check(config: RecipeConfig) -> str | None:
    if config.task != "segmentation":
        return ("workflow: temporal segments time series; set task: segmentation, not "
                f"{config.task}.")
    if config.data.mixing.enabled:
        return "workflow: temporal does not mix series (MixUp / CutMix): remove data.mixing."
    if config.loss.pairwise():
        return ("workflow: temporal trains with cross-entropy only: the pairwise terms "
                f"({', '.join(config.loss.pairwise())}) compare the pixels of one image; "
                "remove them from loss.")
    return None


register_workflow(Workflow(
    name="temporal", module=TemporalModule, tasks=("segmentation",), uses_labels=True,
    description="segments time series of images (pastis_r, synthetic_temporal)",
    check=_check))
