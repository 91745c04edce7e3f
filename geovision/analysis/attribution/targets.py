"""What an attribution explains: one scalar per image, taken from the model's output.

Classification and multi-label: the logit of the chosen class. Segmentation: the class's
logits summed over a mask (by default the pixels the unperturbed model assigns to the class),
because a map explains a scalar, not a whole label image. A `Target` carries one class (and
mask) per image, so a method that evaluates several perturbed copies of a batch at once
repeats the target alongside (`repeat`) and every image keeps its own class and mask.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from geovision.data.tasks import TASKS
from geovision.errors import ConfigError


@dataclass(frozen=True)
class Target:
    """Per image: `classes` (N,) and, for segmentation, `masks` (N, H, W) in {0, 1}."""

    task: str
    classes: torch.Tensor
    masks: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ConfigError(f"task {self.task!r}: use one of {TASKS}.")
        if self.task == "segmentation" and self.masks is None:
            raise ConfigError("a segmentation target needs masks (N, H, W) of the pixels whose "
                              "logits are summed; build it with segmentation_target().")
        if self.masks is not None and self.masks.shape[0] != self.classes.shape[0]:
            raise ConfigError(f"{self.classes.shape[0]} classes but {self.masks.shape[0]} masks: "
                              "give one class and one mask per image.")

    def __len__(self) -> int:
        return int(self.classes.shape[0])

    def __call__(self, output: torch.Tensor) -> torch.Tensor:
        """The explained scalar of each image of `output` (logits): (N,)."""
        return self._select(output, reduce="sum")

    def probability(self, output: torch.Tensor) -> torch.Tensor:
        """The class probability (softmax; sigmoid for multi-label), averaged over the mask
        for segmentation: what deletion and insertion curves track."""
        if self.task == "multilabel":
            probs = torch.sigmoid(output)
        else:
            probs = torch.softmax(output, dim=1)
        return self._select(probs, reduce="mean")

    def _select(self, output: torch.Tensor, reduce: str) -> torch.Tensor:
        n = len(self)
        if output.shape[0] != n:
            raise ConfigError(f"the model returned {output.shape[0]} outputs for a target of "
                              f"{n} images; repeat the target for perturbed copies.")
        rows = torch.arange(n, device=output.device)
        classes = self.classes.to(output.device)
        if self.masks is None:
            if output.ndim != 2:
                raise ConfigError(f"the model returns {tuple(output.shape)} outputs: a "
                                  "per-pixel output needs a segmentation target with masks.")
            return output[rows, classes]
        if output.ndim != 4 or output.shape[-2:] != self.masks.shape[-2:]:
            raise ConfigError(f"segmentation target masks are {tuple(self.masks.shape[-2:])} "
                              f"but the model returns {tuple(output.shape)}.")
        masks = self.masks.to(output.device, output.dtype)
        total = (output[rows, classes] * masks).sum(dim=(1, 2))
        if reduce == "mean":
            total = total / masks.sum(dim=(1, 2)).clamp_min(1)
        return total

    def repeat(self, times: int) -> Target:
        """The target of `times` copies of the batch stacked as [batch, batch, ...]."""
        masks = None if self.masks is None else self.masks.repeat(times, 1, 1)
        return Target(self.task, self.classes.repeat(times), masks)

    def index(self, rows: slice | Sequence[int] | torch.Tensor) -> Target:
        """The target of some of the images."""
        classes = self.classes[rows]
        if classes.ndim == 0:
            classes = classes.view(1)
        masks = None if self.masks is None else self.masks[rows].view(-1, *self.masks.shape[-2:])
        return Target(self.task, classes, masks)


def _classes(classes: int | Sequence[int] | torch.Tensor, n: int) -> torch.Tensor:
    values = torch.as_tensor(classes, dtype=torch.long).flatten()
    if values.numel() == 1:
        values = values.expand(n).clone()
    if values.numel() != n:
        raise ConfigError(f"{values.numel()} target classes for {n} images: give one class, or "
                          "one per image.")
    return values


def classification_target(classes: int | Sequence[int] | torch.Tensor, n: int,
                          task: str = "classification") -> Target:
    return Target(task, _classes(classes, n))


def segmentation_target(classes: int | Sequence[int] | torch.Tensor,
                        masks: torch.Tensor) -> Target:
    """Logits of `classes` summed over `masks` ((N, H, W), or (H, W) for every image)."""
    masks = torch.as_tensor(masks)
    if masks.ndim == 2:
        masks = masks.unsqueeze(0)
    classes = _classes(classes, masks.shape[0]) if masks.shape[0] > 1 else \
        torch.as_tensor(classes, dtype=torch.long).flatten()
    if masks.shape[0] == 1 and classes.numel() > 1:
        masks = masks.expand(classes.numel(), *masks.shape[1:])
    return Target("segmentation", classes, masks.float().contiguous())


@torch.no_grad()
def predicted_target(model: nn.Module, images: torch.Tensor, task: str,
                     classes: int | Sequence[int] | torch.Tensor | None = None) -> Target:
    """The target a user means by "explain the prediction": the predicted class (the most
    confident label for multi-label); for segmentation the class covering most predicted
    pixels, its logits summed over the pixels predicted as that class. `classes` fixes the
    class instead (segmentation: mask = pixels predicted as it)."""
    output = model(images)
    n = images.shape[0]
    if task == "segmentation":
        labels = output.argmax(dim=1)
        if classes is None:
            counts = torch.stack([torch.bincount(row.flatten(), minlength=output.shape[1])
                                  for row in labels])
            chosen = counts.argmax(dim=1)
        else:
            chosen = _classes(classes, n)
        masks = (labels == chosen.view(-1, 1, 1)).float()
        return Target("segmentation", chosen, masks)
    if task not in TASKS:
        raise ConfigError(f"task {task!r}: use one of {TASKS}.")
    chosen = output.argmax(dim=1) if classes is None else _classes(classes, n)
    return Target(task, chosen)


def as_target(model: nn.Module, images: torch.Tensor,
              target: Target | int | Sequence[int] | torch.Tensor | None,
              task: str | None = None) -> Target:
    """`target` as a Target: a Target is kept; classes (or None: the predicted ones) are
    completed with the task, guessed from the output's shape when not given."""
    if isinstance(target, Target):
        if len(target) != images.shape[0]:
            raise ConfigError(f"the target covers {len(target)} images but {images.shape[0]} "
                              "were given.")
        return target
    if task is None:
        with torch.no_grad():
            task = "segmentation" if model(images[:1]).ndim == 4 else "classification"
    return predicted_target(model, images, task, target)
