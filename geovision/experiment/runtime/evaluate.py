"""Evaluating a trained run on one split: metrics and a confusion matrix.

The same function runs at the end of training, for `geovision test RUN` and for the
model_evaluation asset, on a single process whatever the run was trained on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
import torchmetrics
from torch.utils.data import DataLoader
from tqdm import tqdm

from geovision.errors import ConfigError
from geovision.experiment.metrics import (
    confusion_matrix,
    confusion_table,
    make_metrics,
    update_metrics,
)
from geovision.experiment.plots import CONFUSION_SUFFIX, plot_confusion_matrix
from geovision.experiment.runfolders.folder import write_yaml
from geovision.experiment.runfolders.inputs import load_run
from geovision.experiment.runtime.data import make_loader, run_streaming_cache, split_datasets
from geovision.experiment.runtime.fit import read_fit_result
from geovision.experiment.workflows import load_module
from geovision.experiment.workflows.base import ExperimentModule
from geovision.io.atomic import atomic_file
from geovision.io.memory import keep_freed_memory

SPLITS = ("test", "val", "train")


@dataclass
class Evaluation:
    split: str
    metrics: dict[str, float]  # <split>_loss and <split>_<metric>
    num_samples: int
    checkpoint: Path
    confusion: pd.DataFrame | None  # counts: rows true class, columns predicted (or outcome)
    metrics_path: Path
    confusion_caption: str = "confusion matrix (rows: true class, columns: predicted)"
    confusion_csv: Path | None = None
    confusion_png: Path | None = None


def evaluate(module: ExperimentModule, loader: DataLoader, class_names: list[str], *,
             prefix: str = "test", progress: bool = True,
             device: str = "cpu") -> tuple[dict[str, float], pd.DataFrame | None, int]:
    """(metrics, confusion matrix or None, samples seen) of `module` over `loader`, using the
    module's own `evaluation_step` (the computation validation logs); a loss of several terms
    also reports each term."""
    module = module.to(device).eval()
    module.start_evaluation()
    loss = torchmetrics.MeanMetric().to(device)
    terms: dict[str, torchmetrics.MeanMetric] = {}
    supervised = module.config.workflow_spec.uses_labels
    metrics = confusion = None
    if supervised:
        metrics = make_metrics(module.config.metrics, len(class_names), module.config.task)
        metrics = metrics.clone(prefix=f"{prefix}_").to(device)
        confusion = confusion_matrix(len(class_names), module.config.task).to(device)
    seen = 0
    with torch.inference_mode():
        for batch in tqdm(loader, desc=f"evaluate {prefix}", leave=True, disable=not progress):
            batch = [part.to(device) if hasattr(part, "to") else part for part in batch]
            step = module.evaluation_step(tuple(batch))
            loss.update(step.loss, weight=step.batch_size)
            for name, value in (step.terms or {}).items():
                terms.setdefault(name, torchmetrics.MeanMetric().to(device)).update(
                    value, weight=step.batch_size)
            seen += step.batch_size
            if metrics is not None and step.logits is not None:
                update_metrics(metrics, step.logits, step.target)
                update_metrics(confusion, step.logits, step.target)
    values = {f"{prefix}_loss": float(loss.compute())}
    values |= {f"{prefix}_{name}": float(term.compute()) for name, term in terms.items()}
    table = None
    if metrics is not None:
        values |= {key: float(value) for key, value in metrics.compute().items()}
        table = confusion_table(confusion.compute(), class_names, module.config.task)
    return values, table, seen


def evaluate_run(run_dir: Path, *, checkpoint: Path | None = None, split: str = "test",
                 progress: bool = True) -> Evaluation:
    """Evaluate a run's checkpoint (default: the one its fit chose) on `split` of the df the
    run recorded; write evaluation/<split>_metrics.yaml, the confusion matrix as CSV and a
    plot in plots/."""
    if split not in SPLITS:
        raise ConfigError(f"Unknown split {split!r}; evaluate one of {', '.join(SPLITS)}.")
    keep_freed_memory()  # batch tensors reuse freed memory instead of page-faulting anew
    run_dir = Path(run_dir)
    inputs = load_run(run_dir)
    checkpoint = Path(checkpoint) if checkpoint else read_fit_result(run_dir).final_checkpoint
    module = load_module(checkpoint)
    dataset = split_datasets(inputs.config, inputs.dataset_cls, inputs.root, inputs.df,
                             inputs.image_transform(), inputs.shards_dir, splits=(split,),
                             streaming_cache=run_streaming_cache(run_dir))[split]
    loader = make_loader(dataset, inputs.config, shuffle=False)
    accelerator = inputs.config.trainer.accelerator
    device = "cuda" if accelerator != "cpu" and torch.cuda.is_available() else "cpu"
    class_names = list(inputs.dataset_cls.CLASS_NAMES)
    metrics, confusion, seen = evaluate(module, loader, class_names, prefix=split,
                                        progress=progress, device=device)
    out = run_dir / "evaluation"
    evaluation = Evaluation(split=split, metrics=metrics, num_samples=seen,
                            checkpoint=checkpoint, confusion=confusion,
                            metrics_path=out / f"{split}_metrics.yaml")
    write_yaml(evaluation.metrics_path, {"split": split, "checkpoint": str(checkpoint),
                                         "num_samples": seen, "metrics": metrics})
    if confusion is not None:
        evaluation.confusion_csv = out / f"{split}{CONFUSION_SUFFIX}"
        with atomic_file(evaluation.confusion_csv) as tmp:
            confusion.to_csv(tmp)
        multilabel = inputs.config.task == "multilabel"
        if multilabel:
            evaluation.confusion_caption = "per-label outcomes at threshold 0.5 (rows: label)"
        evaluation.confusion_png = plot_confusion_matrix(
            confusion, run_dir / "plots" / f"{split}_confusion_matrix.png",
            f"{'per-label outcomes' if multilabel else 'confusion matrix'} ({split} split)",
            xlabel="outcome at threshold 0.5" if multilabel else "predicted")
    return evaluation
