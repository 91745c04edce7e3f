"""Published checkpoints placed in the libraries' own caches, as a download would leave them:
torchvision's `.pth` in `$TORCH_HOME/hub/checkpoints/<file name of the URL>`, timm's
`model.safetensors` in a Hugging Face hub cache (`blobs/<sha256>`, `refs/main`,
`snapshots/<commit>/` linking to the blob). The tensors are seeded random (norm statistics
included), since no download can happen in a test."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import nn

SNAPSHOT = "0123456789abcdef0123456789abcdef01234567"  # a commit hash, as refs/main holds


def _randomize_norms(model: nn.Module, seed: int) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5, generator=generator)
                module.bias.normal_(0.0, 0.1, generator=generator)
                module.running_mean.normal_(0.0, 0.1, generator=generator)
                module.running_var.uniform_(0.5, 1.5, generator=generator)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def torchvision_checkpoint(torch_home: Path, weights_name: str, seed: int = 0) -> Path:
    """A seeded torchvision state dict saved where torch.hub caches `weights_name`'s URL
    ("ResNet18_Weights.IMAGENET1K_V1")."""
    import torchvision

    weights = torchvision.models.get_weight(weights_name)
    model_name = weights_name.split("_Weights")[0].lower()
    torch.manual_seed(seed)
    state = _randomize_norms(getattr(torchvision.models, model_name)(weights=None), seed)
    path = torch_home / "hub" / "checkpoints" / os.path.basename(urlparse(weights.url).path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return path


def hf_checkpoint(hub_cache: Path, timm_name: str, seed: int = 0) -> Path:
    """A seeded timm state dict as `model.safetensors` of `timm_name`'s hub repo
    ("efficientnet_b0.ra_in1k" -> timm/efficientnet_b0.ra_in1k), in hub-cache layout."""
    import timm
    from safetensors.torch import save_file

    torch.manual_seed(seed)
    state = _randomize_norms(timm.create_model(timm_name.split(".")[0], pretrained=False), seed)
    repo = hub_cache / f"models--timm--{timm_name}"
    (repo / "blobs").mkdir(parents=True)
    staged = repo / "blobs" / "staged"
    save_file(state, str(staged))
    sha256 = hashlib.sha256(staged.read_bytes()).hexdigest()
    staged.rename(repo / "blobs" / sha256)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(SNAPSHOT)
    snapshot = repo / "snapshots" / SNAPSHOT
    snapshot.mkdir(parents=True)
    (snapshot / "model.safetensors").symlink_to(f"../../blobs/{sha256}")
    return snapshot / "model.safetensors"
