"""Metric updates count with torch.bincount on the CPU even in deterministic mode: the same
values as torchmetrics' comparison fallback, and the process's flag as it was."""

from __future__ import annotations

import time

import torch

from geovision.experiment.metrics import make_metrics, update_metrics


def _scores(fast: bool) -> tuple[dict[str, float], float]:
    generator = torch.Generator().manual_seed(0)
    metrics = make_metrics(("accuracy", "f1", "auroc", "average_precision"), 4, "multilabel")
    started = time.perf_counter()
    for _ in range(2):
        preds = torch.rand(16, 4, generator=generator)
        target = (torch.rand(16, 4, generator=generator) < 0.4).long()
        if fast:
            update_metrics(metrics, preds, target)
        else:
            metrics.update(preds, target)
    return {k: float(v) for k, v in metrics.compute().items()}, time.perf_counter() - started


def test_deterministic_updates_count_natively_with_the_same_values():
    torch.use_deterministic_algorithms(True)
    try:
        slow, slow_seconds = _scores(fast=False)  # torchmetrics' (N x bins) comparison
        fast, fast_seconds = _scores(fast=True)
        assert torch.are_deterministic_algorithms_enabled()  # given back after each update
    finally:
        torch.use_deterministic_algorithms(False)
    assert fast == slow
    print(f"updates: {slow_seconds:.3f} s compared, {fast_seconds:.3f} s counted")
