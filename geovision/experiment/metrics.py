"""torchmetrics objects for the metric names a config may list, and the confusion matrix."""

from __future__ import annotations

import torch
import torchmetrics
from torchmetrics.classification import MulticlassConfusionMatrix

from geovision.experiment.config import METRICS

IGNORE = -100
# Accuracy over all samples (or pixels); the per-class scores averaged over classes.
AVERAGE = {"accuracy": "micro", "cohen_kappa": None, "matthews_corrcoef": None}
# Curve metrics keep binned counts, so their memory stays fixed however many pixels are seen.
THRESHOLDS = {"auroc": 200, "average_precision": 200}


def make_metrics(names: tuple[str, ...], num_classes: int,
                 task: str) -> torchmetrics.MetricCollection:
    """Multiclass metrics for `names` (keys of config.METRICS); segmentation ignores the
    pixels that belong to no class."""
    unknown = sorted(set(names) - set(METRICS))
    if unknown:
        raise ValueError(f"Unknown metrics {unknown}; valid: {sorted(METRICS)}.")
    ignore = IGNORE if task == "segmentation" else None
    metrics = {}
    for name in names:
        kwargs: dict = {"ignore_index": ignore}
        average = AVERAGE.get(name, "macro")
        if average is not None:
            kwargs["average"] = average
        if name in THRESHOLDS:
            kwargs["thresholds"] = THRESHOLDS[name]
        metric_cls = getattr(torchmetrics.classification, METRICS[name])
        metrics[name] = metric_cls(num_classes, **kwargs)
    return torchmetrics.MetricCollection(metrics)


def confusion_matrix(num_classes: int, task: str) -> MulticlassConfusionMatrix:
    """Counts of (true class, predicted class); rows are the truth."""
    return MulticlassConfusionMatrix(num_classes,
                                     ignore_index=IGNORE if task == "segmentation" else None)


def mask_to_index(one_hot: torch.Tensor) -> torch.Tensor:
    """(B, K, H, W) one-hot masks -> (B, H, W) indices, IGNORE where no class is set."""
    index = one_hot.argmax(dim=1)
    return torch.where(one_hot.sum(dim=1) > 0, index, torch.full_like(index, IGNORE))
