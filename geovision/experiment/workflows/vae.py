"""The VAE workflow: a variational autoencoder pretrained on a dataset's images (labels
unused)."""

from __future__ import annotations

import torch

from geovision.experiment.workflows import UNLABELLED_TASKS, Workflow, register_workflow
from geovision.experiment.workflows.base import EvalStep, ExperimentModule


class VAEModule(ExperimentModule):
    """A variational autoencoder; `loss` is the negative ELBO per pixel, with its
    reconstruction and KL parts logged beside it."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.model(x)

    def training_step(self, batch: tuple, batch_idx: int) -> torch.Tensor:
        image = self.augment(batch[0])[0]
        loss, reconstruction, kl = self.model.loss(image)
        size = image.shape[0]
        self.log_loss("train", loss, size)
        self.log_loss("train", reconstruction.detach(), size, "reconstruction", prog_bar=False)
        self.log_loss("train", kl.detach(), size, "kl", prog_bar=False)
        return loss

    def evaluation_step(self, batch: tuple) -> EvalStep:
        loss, _, _ = self.model.loss(batch[0])
        return EvalStep(loss, batch[0].shape[0])


register_workflow(Workflow(
    name="vae", module=VAEModule, tasks=UNLABELLED_TASKS, uses_labels=False,
    description="generative pretraining: a variational autoencoder"))
