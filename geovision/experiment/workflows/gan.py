"""The GAN workflow: generative pretraining on a dataset's images (labels unused)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from pydantic import Field

from geovision.experiment.config import WorkflowSettings
from geovision.experiment.workflows import UNLABELLED_TASKS, Workflow, register_workflow
from geovision.experiment.workflows.base import EvalStep, ExperimentModule, configure_optimizer


def moment_gap(generated: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Mean absolute gap between the per-band means and standard deviations of two batches:
    0 when the generator matches the data's first two moments in every band."""
    dims = (0, 2, 3)
    return ((generated.mean(dims) - real.mean(dims)).abs().mean()
            + (generated.std(dims) - real.std(dims)).abs().mean())


class GANSettings(WorkflowSettings):
    """The adversarial game's own choices."""

    real_label: float = Field(1.0, gt=0.5, le=1, description="the discriminator's target for "
                              "real images; below 1 is one-sided label smoothing (e.g. 0.9), "
                              "which keeps the discriminator from growing overconfident")


class GANModule(ExperimentModule):
    """A generator and a discriminator trained against each other (non-saturating loss).

    A GAN has no single objective, so `train_d_loss` and `train_g_loss` are logged as they
    are, and `loss` (train and val, the checkpoint monitor) is the moment gap between
    generated and real images: it falls as the samples come to look like the data. Validation
    always draws from the same latent vectors, so epochs compare like with like.
    """

    def __init__(self, config: dict[str, Any], in_channels: int, num_classes: int,
                 image_size: int | None = None) -> None:
        super().__init__(config, in_channels, num_classes, image_size)
        self.automatic_optimization = False
        fixed = torch.Generator().manual_seed(self.config.random_seed)
        self.register_buffer("fixed_noise", torch.randn(
            self.config.data.batch_size, self.model.latent_dim, generator=fixed))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.model(z)

    def training_step(self, batch: tuple, batch_idx: int) -> None:
        real = self.augment(batch[0])[0]
        opt_g, opt_d = self.optimizers()
        z = torch.randn(real.shape[0], self.model.latent_dim, device=real.device)
        fake = self.model.generator(z)
        d_real = self.model.discriminator(real)
        d_fake = self.model.discriminator(fake.detach())
        real_label = self.config.settings_as(GANSettings).real_label
        d_loss = 0.5 * (
            F.binary_cross_entropy_with_logits(d_real, torch.full_like(d_real, real_label))
            + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake)))
        opt_d.zero_grad(set_to_none=True)
        self.manual_backward(d_loss)
        opt_d.step()
        g_logits = self.model.discriminator(fake)
        g_loss = F.binary_cross_entropy_with_logits(g_logits, torch.ones_like(g_logits))
        opt_g.zero_grad(set_to_none=True)
        self.manual_backward(g_loss)
        opt_g.step()
        size = real.shape[0]
        self.log_loss("train", moment_gap(fake.detach(), real), size)
        self.log_loss("train", d_loss.detach(), size, "d_loss", prog_bar=False)
        self.log_loss("train", g_loss.detach(), size, "g_loss", prog_bar=False)

    def on_train_epoch_end(self) -> None:
        # With manual optimization the epoch schedules are stepped here.
        schedulers = self.lr_schedulers()
        for scheduler in schedulers if isinstance(schedulers, list) else [schedulers]:
            if scheduler is not None:
                scheduler.step()

    def evaluation_step(self, batch: tuple) -> EvalStep:
        real = batch[0]
        n = real.shape[0]
        z = (self.fixed_noise[:n] if n <= self.fixed_noise.shape[0]
             else torch.randn(n, self.model.latent_dim, device=real.device))
        return EvalStep(moment_gap(self.model(z), real), n)

    def configure_optimizers(self) -> Any:
        return (configure_optimizer(self.config, self.model.generator.parameters()),
                configure_optimizer(self.config, self.model.discriminator.parameters()))


def _check_gan(config: Any) -> str | None:
    trainer = config.trainer
    if trainer.gradient_clip_val is not None or trainer.accumulate_grad_batches > 1:
        return ("trainer: the gan workflow steps its two optimizers itself; leave "
                "gradient_clip_val unset and accumulate_grad_batches at 1")
    if config.swa.enabled:
        return "swa: averaging needs a single optimizer; the gan workflow has two"
    return None


register_workflow(Workflow(
    name="gan", module=GANModule, tasks=UNLABELLED_TASKS, uses_labels=False, check=_check_gan,
    settings=GANSettings,
    description="generative pretraining: a generator against a discriminator"))
