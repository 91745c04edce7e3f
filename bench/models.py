"""Models: training-step (forward + backward) throughput of our architectures against the
libraries they follow, at the same batch, size and device; goal >= 0.95.

- our ResNet-50 against torchvision's ResNet-50 (1000 classes, cross-entropy);
- our U-Net (ResNet-34 encoder) against segmentation-models-pytorch's `Unet("resnet34")`
  (2 classes, cross-entropy per pixel), which has the same layers and parameter count.

Each contender runs in a process of its own, in turns that rotate over the rounds; the ratio is
the median of the per-round ratios (bench/common.py). On a GPU: batch 32 at 224 px; on the CPU:
batch 2 at 64 px (a shared 2-core machine). The Potts loss's share of a U-Net training step
is bench/_models_losses.py's line.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch

from bench._models_losses import potts_share
from bench.common import contenders_in_rounds, median_line

GOAL = 0.95
ROUNDS = 5


def setting() -> tuple[str, int, int]:
    """(device, batch, size) for this machine."""
    if torch.cuda.is_available():
        return "cuda", 32, 224
    return "cpu", 2, 64


def build(name: str) -> tuple[torch.nn.Module, int, bool]:
    """(model, classes, dense output) of contender `name`."""
    if name == "ours_resnet50":
        from geovision.models import create_model

        return create_model("resnet50", in_channels=3, num_classes=1000), 1000, False
    if name == "torchvision_resnet50":
        import torchvision

        return torchvision.models.resnet50(), 1000, False
    if name == "ours_unet":
        from geovision.models import create_model

        return create_model("unet", in_channels=3, num_classes=2, encoder="resnet34"), 2, True
    if name == "smp_unet":
        import segmentation_models_pytorch as smp

        return smp.Unet("resnet34", encoder_weights=None, in_channels=3, classes=2), 2, True
    raise ValueError(name)


def training_step(name: str, device: str, batch: int, size: int) -> Callable[[], float]:
    """Work for `contenders_in_rounds`: one forward + backward; returns images per second."""
    torch.manual_seed(0)
    if device == "cpu":
        torch.set_num_threads(2)
    model, classes, dense = build(name)
    model = model.to(device).train()
    x = torch.randn(batch, 3, size, size, device=device)
    shape = (batch, size, size) if dense else (batch,)
    target = torch.randint(0, classes, shape, device=device)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step() -> float:
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        model.zero_grad(set_to_none=True)
        loss_fn(model(x), target).backward()
        if device == "cuda":
            torch.cuda.synchronize()
        return batch / (time.perf_counter() - start)

    def work() -> float:
        return max(step() for _ in range(3))  # the best of 3 steps: one turn, little noise

    return work


def throughput() -> None:
    device, batch, size = setting()
    print(f"device {device}, batch {batch}, {size} px, {ROUNDS} rounds", flush=True)
    pairs = [("ours_resnet50", "torchvision_resnet50", "models_resnet50_train"),
             ("ours_unet", "smp_unet", "models_unet_train")]
    for ours, theirs, line in pairs:
        rounds = contenders_in_rounds([ours, theirs], training_step, (device, batch, size),
                                      ROUNDS)
        for i, result in enumerate(rounds):
            print(f"  round {i}: {ours} {result[ours]:.2f} img/s, {theirs} "
                  f"{result[theirs]:.2f} img/s", flush=True)
        median_line(line, [r[ours] for r in rounds], "img/s", theirs,
                    [r[theirs] for r in rounds], GOAL)


def main() -> None:
    throughput()
    potts_share()


if __name__ == "__main__":
    main()
