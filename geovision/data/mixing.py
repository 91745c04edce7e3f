"""MixUp and CutMix as batch transforms, for classification, multi-label and segmentation.

Classification targets become soft labels (one row per sample summing to 1): MixUp blends two
images and their labels by the same weight; CutMix pastes a box from another image and weights
the labels by the share of pixels each image keeps. Multi-hot targets are mixed the same way
(each label's weight becomes the share of the mix that carries it). Segmentation uses CutMix
only: the mask is cut with the same box, so every pixel keeps exactly one class (or none where
it was ignored).

All random choices come from the mixer's own seeded generator, so a batch is mixed the same way
for the same seed on every device, and the generator's state can be checkpointed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from geovision.errors import ConfigError


def cut_box(height: int, width: int, lam: float,
            rng: np.random.Generator) -> tuple[int, int, int, int]:
    """(y0, y1, x0, x1) of a box covering about 1 - lam of the image, centred anywhere and
    clipped at the borders."""
    ratio = np.sqrt(1.0 - lam)
    box_h, box_w = int(round(height * ratio)), int(round(width * ratio))
    cy, cx = int(rng.integers(height)), int(rng.integers(width))
    y0, y1 = np.clip([cy - box_h // 2, cy + box_h - box_h // 2], 0, height)
    x0, x1 = np.clip([cx - box_w // 2, cx + box_w - box_w // 2], 0, width)
    return int(y0), int(y1), int(x0), int(x1)


def mixup(images: torch.Tensor, soft_labels: torch.Tensor, lam: float,
          perm: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Blend every sample with sample `perm[i]`: weight `lam` on itself."""
    mixed = images * lam + images[perm] * (1 - lam)
    return mixed, soft_labels * lam + soft_labels[perm] * (1 - lam)


def cutmix(images: torch.Tensor, targets: torch.Tensor, box: tuple[int, int, int, int],
           perm: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Paste `box` of sample `perm[i]` into sample i.

    `targets` are soft labels (B, K), reweighted by the pixel share each image keeps, or
    one-hot masks (B, K, H, W), cut with the same box.
    """
    y0, y1, x0, x1 = box
    images = images.clone()
    images[:, :, y0:y1, x0:x1] = images[perm][:, :, y0:y1, x0:x1]
    if targets.ndim == 4:
        targets = targets.clone()
        targets[:, :, y0:y1, x0:x1] = targets[perm][:, :, y0:y1, x0:x1]
        return images, targets
    kept = 1.0 - (y1 - y0) * (x1 - x0) / (images.shape[-2] * images.shape[-1])
    return images, targets * kept + targets[perm] * (1 - kept)


class BatchMixer:
    """Mixes training batches as the config's `data.mixing` says.

    Classification: `(images, labels (B,))` -> `(images, soft labels (B, K))`, soft even when a
    batch is left unmixed, so the loss always sees one kind of target. Multilabel:
    `(images, multi-hot (B, K))` -> the same shapes, with label weights in [0, 1].
    Segmentation: `(images, one-hot masks (B, K, H, W))` -> the same shapes.
    """

    def __init__(self, task: str, num_classes: int, *, mixup_alpha: float = 0.0,
                 cutmix_alpha: float = 0.0, prob: float = 1.0, switch_prob: float = 0.5,
                 seed: int = 0) -> None:
        if task not in ("classification", "multilabel", "segmentation"):
            raise ConfigError("Mixing serves classification, multilabel and segmentation, not "
                              f"{task!r}.")
        if task == "segmentation" and mixup_alpha > 0:
            raise ConfigError("MixUp would blend masks into non-one-hot pixels; for segmentation "
                              "use cutmix_alpha only.")
        if mixup_alpha < 0 or cutmix_alpha < 0 or not 0 <= prob <= 1:
            raise ConfigError("alphas must be >= 0 and prob in [0, 1].")
        self.task, self.num_classes = task, num_classes
        self.mixup_alpha, self.cutmix_alpha = mixup_alpha, cutmix_alpha
        self.prob, self.switch_prob = prob, switch_prob
        self.rng = np.random.default_rng(seed)

    def __call__(self, images: torch.Tensor,
                 targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.task == "classification":
            targets = F.one_hot(targets.long(), self.num_classes).to(images.dtype)
        if self.rng.random() >= self.prob or (self.mixup_alpha == 0 and self.cutmix_alpha == 0):
            return images, targets
        use_cutmix = self.cutmix_alpha > 0 and (self.mixup_alpha == 0
                                                or self.rng.random() < self.switch_prob)
        alpha = self.cutmix_alpha if use_cutmix else self.mixup_alpha
        lam = float(self.rng.beta(alpha, alpha))
        perm = torch.as_tensor(self.rng.permutation(images.shape[0]), device=images.device)
        if use_cutmix:
            box = cut_box(images.shape[-2], images.shape[-1], lam, self.rng)
            return cutmix(images, targets, box, perm)
        return mixup(images, targets, lam, perm)

    def state_dict(self) -> dict[str, Any]:
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]
