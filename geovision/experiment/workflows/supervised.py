"""The supervised workflow: a registered model trained on the dataset's labels or masks."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from geovision.data.mixing import BatchMixer
from geovision.data.registry import get_dataset
from geovision.data.tasks import TASKS
from geovision.experiment.metrics import IGNORE, make_metrics, mask_to_index, update_metrics
from geovision.experiment.regularizers import PairwiseTerms
from geovision.experiment.workflows import Workflow, register_workflow
from geovision.experiment.workflows.base import EvalStep, ExperimentModule
from geovision.models.losses import partial_cross_entropy


class SupervisedModule(ExperimentModule):
    """Classification, multilabel or segmentation with any registered model for the config's
    task, with optional MixUp / CutMix on training batches (soft labels for classification),
    and for segmentation the config's Potts / normalized-cut terms besides cross-entropy."""

    def __init__(self, config: dict[str, Any], in_channels: int, num_classes: int,
                 image_size: int | None = None) -> None:
        super().__init__(config, in_channels, num_classes, image_size)
        self.task = self.config.task
        metrics = make_metrics(self.config.metrics, num_classes, self.task)
        self.train_metrics = metrics.clone(prefix="train_")
        self.val_metrics = metrics.clone(prefix="val_")
        mixing = self.config.data.mixing
        self.mixer = BatchMixer(self.task, num_classes, mixup_alpha=mixing.mixup_alpha,
                                cutmix_alpha=mixing.cutmix_alpha, prob=mixing.prob,
                                switch_prob=mixing.switch_prob,
                                seed=self.config.random_seed) if mixing.enabled else None
        loss = self.config.loss
        self.pairwise = PairwiseTerms(loss, get_dataset(self.config.dataset_name).STD_DEVS) \
            if loss.pairwise() else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def _targets(self, target: torch.Tensor) -> torch.Tensor:
        """Stored targets as the loss takes them: class indices (IGNORE for pixels of no
        class), or for multilabel the multi-hot float vectors."""
        return mask_to_index(target) if self.task == "segmentation" else target

    def _cross_entropy(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Cross-entropy over classes (on indices, or on soft labels from mixing); for
        multilabel, binary cross-entropy per label (on 0/1, or mixed label weights). Pixels
        of no class are left out (partial cross-entropy on scribbles)."""
        if self.task == "multilabel":
            return F.binary_cross_entropy_with_logits(logits, target)
        if target.is_floating_point():
            return F.cross_entropy(logits, target)
        return partial_cross_entropy(logits, target, ignore_index=IGNORE)

    def _loss(self, logits: torch.Tensor, target: torch.Tensor, image: torch.Tensor,
              progress: float | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The config's weighted loss terms, and each term's unweighted value when there is
        more than cross-entropy; pairwise weights ramp with `progress` (None: full)."""
        ce = self._cross_entropy(logits, target)
        ce_weight = self.config.loss.ce.weight
        loss = ce if ce_weight == 1 else ce_weight * ce
        if self.pairwise is None:
            return loss, {}
        terms = {"ce": ce.detach()}
        for name, (value, weight) in self.pairwise(logits, image, target != IGNORE,
                                                   progress).items():
            loss = loss + weight * value
            terms[name] = value.detach()
        return loss, terms

    def _progress(self) -> float:
        """How far training is, for weight ramps: optimizer steps done over all of them."""
        return self.global_step / max(1, self.trainer.estimated_stepping_batches)

    def _metric_targets(self, target: torch.Tensor) -> torch.Tensor:
        """What the metrics count as the truth: class indices, or 0/1 per label. Mixed
        targets count their larger share (classification) or labels weighing at least a
        half (multilabel)."""
        if self.task == "multilabel":
            return (target >= 0.5).int()
        return target.argmax(dim=1) if target.is_floating_point() else target

    def evaluation_step(self, batch: tuple) -> EvalStep:
        image, target, _ = batch
        target = self._targets(target)
        logits = self(image)
        loss, terms = self._loss(logits, target, image)
        return EvalStep(loss, image.shape[0], logits, self._metric_targets(target), terms)

    def training_step(self, batch: tuple, batch_idx: int) -> torch.Tensor:
        image, target, _ = batch
        segmentation = self.task == "segmentation"
        image, mask = self.augment(image, target if segmentation else None)
        target = mask if segmentation else target
        if self.mixer is not None:
            image, target = self.mixer(image, target)
        if segmentation:
            target = self._targets(target)
        logits = self(image)
        loss, terms = self._loss(logits, target, image,
                                 self._progress() if self.pairwise is not None else None)
        update_metrics(self.train_metrics, logits.detach(), self._metric_targets(target))
        self.log_loss("train", loss, image.shape[0])
        self._log_terms("train", terms, image.shape[0])
        self.log_dict(self.train_metrics, on_step=False, on_epoch=True,
                      batch_size=image.shape[0])
        return loss

    def validation_step(self, batch: tuple, batch_idx: int) -> EvalStep:
        step = super().validation_step(batch, batch_idx)
        self._log_terms("val", step.terms, step.batch_size)
        update_metrics(self.val_metrics, step.logits, step.target)
        self.log_dict(self.val_metrics, on_step=False, on_epoch=True, batch_size=step.batch_size)
        return step

    def _log_terms(self, stage: str, terms: dict[str, torch.Tensor] | None,
                   batch_size: int) -> None:
        for name, value in (terms or {}).items():
            self.log_loss(stage, value, batch_size, name=name, prog_bar=False)

    def predict_step(self, batch: tuple, batch_idx: int) -> torch.Tensor:
        """Class indices, or for multilabel 0/1 per label (sigmoid at least a half)."""
        logits = self(batch[0])
        if self.task == "multilabel":
            return (logits >= 0).int()
        return logits.argmax(dim=1)

    def random_sources(self) -> dict[str, Any]:
        sources = super().random_sources()
        if self.mixer is not None:
            sources["mixer"] = self.mixer
        return sources


register_workflow(Workflow(
    name="supervised", module=SupervisedModule,
    tasks=TASKS, uses_labels=True,
    description="trains on the labels (or masks) with the dataset's task"))
