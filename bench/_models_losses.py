"""The Potts loss's share of a U-Net training step: one step (forward, cross-entropy, backward)
without the term against the same step with it (the affinity of the batch built, Potts forward
and backward), at 256 px, batch 4, 3 bands, 2 classes (building masks), Zorzi and Fraundorfer's
9 x 9 window; goal >= 0.6 (the term costs at most two thirds of a plain step).

Each contender runs in a process of its own, in turns that rotate over the rounds; the ratio is
the median of the per-round ratios (bench/common.py). Called from bench/models.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch

from bench.common import contenders_in_rounds, median_line

GOAL = 0.6
ROUNDS = 5
BATCH, SIZE, BANDS, CLASSES = 4, 256, 3, 2
PRESET = "zorzi"


def potts_step(name: str, device: str) -> Callable[[], float]:
    """Work for `contenders_in_rounds`: the best of 3 training steps, in steps per second."""
    import torch.nn.functional as F

    from geovision.models import create_model
    from geovision.models.losses import get_preset, pairwise_loss

    torch.manual_seed(0)
    if device == "cpu":
        torch.set_num_threads(2)
    model = create_model("unet", in_channels=BANDS, num_classes=CLASSES,
                         encoder="resnet34").to(device).train()
    image = torch.rand(BATCH, BANDS, SIZE, SIZE, device=device)
    target = torch.randint(0, CLASSES, (BATCH, SIZE, SIZE), device=device)
    preset = get_preset(PRESET)

    def step() -> float:
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        model.zero_grad(set_to_none=True)
        logits = model(image)
        loss = F.cross_entropy(logits, target)
        if name == "with_potts":
            loss = loss + pairwise_loss("potts", logits.softmax(1), image, preset.kernel,
                                        normalize=preset.normalize)
        loss.backward()
        if device == "cuda":
            torch.cuda.synchronize()
        return 1 / (time.perf_counter() - start)

    def work() -> float:
        return max(step() for _ in range(3))

    return work


def potts_share() -> None:
    device = "cuda" if torch.cuda.is_available() else "cpu"
    print(f"Potts share: U-Net (resnet34), {device}, batch {BATCH}, {SIZE} px, {BANDS} bands, "
          f"{CLASSES} classes, preset {PRESET}, {ROUNDS} rounds", flush=True)
    names = ["with_potts", "without_potts"]
    rounds = contenders_in_rounds(names, potts_step, (device,), ROUNDS)
    for i, result in enumerate(rounds):
        print(f"  round {i}: step {1000 / result['without_potts']:.1f} ms without Potts, "
              f"{1000 / result['with_potts']:.1f} ms with", flush=True)
    median_line("models_unet_potts_share", [r["with_potts"] for r in rounds], "steps/s",
                "without_potts", [r["without_potts"] for r in rounds], GOAL)
