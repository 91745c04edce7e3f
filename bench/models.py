"""Models: training-step (forward + backward) throughput of our architectures against the
libraries they follow, at the same batch, size and device; goal >= 0.95.

- our ResNet-50 against torchvision's ResNet-50 (1000 classes, cross-entropy);
- our U-Net (ResNet-34 encoder) against segmentation-models-pytorch's `Unet("resnet34")`
  (2 classes, cross-entropy per pixel), which has the same layers and parameter count.

Both models of a pair live in one freshly spawned process and take turns step by step, the
order alternating; the ratio is the median of the per-round ratios (bench/common.py). One
process per model would measure the process more than the model: two processes running the
same torchvision ResNet-50 differed by 10-20% for their whole lives here (where the allocator
put their heaps, how often it gave pages back), while the two models in one process share the
allocator's state. On a GPU: batch 32 at 224 px; on the CPU: batch 2 at 64 px (a shared
2-core machine). The Potts loss's share of a U-Net training step
is bench/_models_losses.py's line.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable

import torch

from bench._models_losses import potts_share
from bench.common import median_line

GOAL = 0.95
ROUNDS = 60


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
    """Contender `name`'s turn: the best of 3 forward + backward steps, in images per second."""
    torch.manual_seed(0)
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


def paired_rounds(names: tuple[str, str], device: str, batch: int, size: int,
                  rounds: int) -> list[dict[str, float]]:
    """Per round {name: img/s} of both contenders, built and run in this process; each warms
    up with one turn, then the rounds alternate which goes first."""
    if device == "cpu":
        torch.set_num_threads(2)
    works = {name: training_step(name, device, batch, size) for name in names}
    for work in works.values():
        work()
    results = []
    for turn in range(rounds):
        order = names if turn % 2 == 0 else names[::-1]
        results.append({name: works[name]() for name in order})
    return results


def throughput() -> None:
    device, batch, size = setting()
    print(f"device {device}, batch {batch}, {size} px, {ROUNDS} rounds", flush=True)
    pairs = [("ours_resnet50", "torchvision_resnet50", "models_resnet50_train"),
             ("ours_unet", "smp_unet", "models_unet_train")]
    context = multiprocessing.get_context("spawn")
    for ours, theirs, line in pairs:
        with context.Pool(1) as pool:  # a fresh process: no heap left by the previous pair
            rounds = pool.apply(paired_rounds, ((ours, theirs), device, batch, size, ROUNDS))
        ratios = sorted(r[ours] / r[theirs] for r in rounds)
        print(f"  {ours} {min(r[ours] for r in rounds):.2f}-{max(r[ours] for r in rounds):.2f}"
              f" img/s, {theirs} {min(r[theirs] for r in rounds):.2f}-"
              f"{max(r[theirs] for r in rounds):.2f} img/s; per-round ratio quartiles "
              f"{ratios[len(ratios) // 4]:.3f} / {ratios[len(ratios) // 2]:.3f} / "
              f"{ratios[3 * len(ratios) // 4]:.3f}", flush=True)
        median_line(line, [r[ours] for r in rounds], "img/s", theirs,
                    [r[theirs] for r in rounds], GOAL)


def main() -> None:
    throughput()
    potts_share()


if __name__ == "__main__":
    main()
