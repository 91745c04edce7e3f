"""torchmetrics objects for the metric names a config may list, and the confusion matrix."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pandas as pd
import torch
import torchmetrics
from torchmetrics.classification import MulticlassConfusionMatrix, MultilabelConfusionMatrix

from geovision.errors import ConfigError
from geovision.experiment.config import METRICS

IGNORE = -100
# Accuracy over all samples, pixels or label decisions; the per-class scores averaged over
# classes; kappa and MCC are one score by definition.
AVERAGE = {"accuracy": "micro"}
AVERAGE_FREE = ("cohen_kappa", "matthews_corrcoef")
LABEL_OUTCOMES = ("true_negative", "false_positive", "false_negative", "true_positive")
# Curve metrics keep binned counts, so their memory stays fixed however many pixels are seen.
THRESHOLDS = {"auroc": 200, "average_precision": 200}


def make_metrics(names: tuple[str, ...], num_classes: int,
                 task: str) -> torchmetrics.MetricCollection:
    """Metrics for `names` (keys of config.METRICS): multiclass for classification and
    segmentation (which ignores the pixels that belong to no class), multi-label (one score
    per label at threshold 0.5, averaged over labels) for multilabel."""
    unknown = sorted(set(names) - set(METRICS))
    if unknown:
        raise ConfigError(f"Unknown metrics {unknown}; valid: {sorted(METRICS)}.")
    multilabel = task == "multilabel"
    metrics = {}
    for name in names:
        kwargs: dict = {} if multilabel else {
            "ignore_index": IGNORE if task == "segmentation" else None}
        if name not in AVERAGE_FREE:
            kwargs["average"] = AVERAGE.get(name, "macro")
        if name in THRESHOLDS:
            kwargs["thresholds"] = THRESHOLDS[name]
        prefix = "Multilabel" if multilabel else "Multiclass"
        metric_cls = getattr(torchmetrics.classification, prefix + METRICS[name])
        metrics[name] = metric_cls(num_classes, **kwargs)
    return torchmetrics.MetricCollection(metrics)


@contextmanager
def native_bincount(device: torch.device) -> Iterator[None]:
    """torchmetrics counts with an (N x bins) comparison instead of torch.bincount whenever
    deterministic algorithms are on (CUDA's weighted bincount is not deterministic). On the
    CPU torch.bincount is deterministic and gives the same counts, so the flag is lifted for
    the update: the comparison made a training run with a multilabel AUROC (200 thresholds)
    spend most of its time counting."""
    if device.type != "cpu" or not torch.are_deterministic_algorithms_enabled():
        yield
        return
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(False)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(True, warn_only=warn_only)


def update_metrics(metrics: torchmetrics.Metric | torchmetrics.MetricCollection,
                   preds: torch.Tensor, target: torch.Tensor) -> None:
    """`metrics.update(preds, target)`, counting with torch.bincount where it is exact."""
    with native_bincount(preds.device):
        metrics.update(preds, target)


def confusion_matrix(num_classes: int, task: str) -> torchmetrics.Metric:
    """Multiclass: counts of (true class, predicted class), rows the truth. Multilabel: per
    label, counts of (true, predicted) in {0, 1} x {0, 1}."""
    if task == "multilabel":
        return MultilabelConfusionMatrix(num_classes)
    return MulticlassConfusionMatrix(num_classes,
                                     ignore_index=IGNORE if task == "segmentation" else None)


def confusion_table(counts: torch.Tensor, class_names: list[str], task: str) -> pd.DataFrame:
    """The computed confusion matrix as a table: classes x classes, or for multilabel one
    row per label with its true/false negatives and positives."""
    counts = counts.cpu().numpy()
    if task == "multilabel":  # (K, 2, 2): [[tn, fp], [fn, tp]] per label
        return pd.DataFrame(counts.reshape(len(class_names), 4), index=class_names,
                            columns=list(LABEL_OUTCOMES))
    return pd.DataFrame(counts, index=class_names, columns=class_names)


def mask_to_index(one_hot: torch.Tensor) -> torch.Tensor:
    """(B, K, H, W) one-hot masks -> (B, H, W) indices, IGNORE where no class is set."""
    index = one_hot.argmax(dim=1)
    return torch.where(one_hot.sum(dim=1) > 0, index, torch.full_like(index, IGNORE))
