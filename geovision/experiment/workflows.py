"""Which LightningModule trains each workflow, and loading any of them from a checkpoint."""

from __future__ import annotations

from pathlib import Path

import torch

from geovision.experiment.config import ExperimentConfig
from geovision.experiment.contrastive import MoCoModule
from geovision.experiment.generative import GANModule, VAEModule
from geovision.experiment.modules import ExperimentModule, SupervisedModule

MODULES: dict[str, type[ExperimentModule]] = {
    "supervised": SupervisedModule,
    "gan": GANModule,
    "vae": VAEModule,
    "moco": MoCoModule,
}


def build_module(config: ExperimentConfig, in_channels: int, num_classes: int,
                 image_size: int | None = None) -> ExperimentModule:
    return MODULES[config.workflow](config.model_dump(mode="json"), in_channels, num_classes,
                                    image_size)


def load_module(checkpoint: str | Path) -> ExperimentModule:
    """A trained module of whichever workflow from a checkpoint, on CPU, in eval mode."""
    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise FileNotFoundError(f"Checkpoint {checkpoint} not found.")
    hparams = torch.load(checkpoint, map_location="cpu", weights_only=True)["hyper_parameters"]
    module_cls = MODULES[hparams["config"].get("workflow", "supervised")]
    return module_cls.load_from_checkpoint(checkpoint, map_location="cpu").eval()
