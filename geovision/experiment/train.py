"""Train and test one experiment into its own run directory."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import lightning as L
import pandas as pd

from geovision.data.registry import get_dataset
from geovision.experiment.callbacks import EpochMetricsWriter
from geovision.experiment.config import ExperimentConfig
from geovision.experiment.data import make_loader, split_datasets
from geovision.experiment.modules import SupervisedModule
from geovision.experiment.rundir import (
    attach_log_file,
    detach_log_file,
    new_run_dir,
    read_metrics,
    write_yaml,
)
from geovision.hashing import hash_dataframe
from geovision.paths import dataset_root, geovision_home
from geovision.provenance import git_commit, package_versions

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    run_dir: Path
    best_checkpoint: Path
    last_checkpoint: Path
    metrics_csv: Path
    epochs: int
    test_metrics: dict[str, float] = field(default_factory=dict)
    chance_accuracy: float | None = None


def train(
    config: ExperimentConfig,
    *,
    home: Path | None = None,
    root: Path | None = None,
    df: pd.DataFrame | None = None,
    image_transform: Callable | None = None,
    shards_dir: Path | None = None,
    provenance: dict | None = None,
    progress: bool = True,
    command: str = "train",
) -> TrainResult:
    """Fit `config`, then evaluate the best checkpoint on the test split.

    `root`/`df` default to the registered dataset under the artifact root and its default
    splits (the same df the dataset_index asset writes); `image_transform` lets callers
    normalise with statistics they computed;
    `provenance` is merged into hparams.yaml (e.g. upstream data versions).
    """
    home = geovision_home(home)
    dataset_cls = get_dataset(config.dataset_name)
    root = Path(root) if root else dataset_root(config.dataset_name, home)
    if df is None:
        # The dataset's own split settings, as the dataset_index asset uses: the split is part
        # of the data's identity, not of one experiment's seed.
        df = dataset_cls.build_df(root)
    run_dir = new_run_dir(config.project, config.name, home)
    write_yaml(run_dir / "hparams.yaml", {
        "config": config.model_dump(mode="json"),
        "config_hash": config.config_hash(),
        "dataset": dataset_cls.describe() | {"root": str(root), "df_hash": hash_dataframe(df)},
        "provenance": (provenance or {}) | {"packages": package_versions(),
                                            "git_commit": git_commit()},
    })
    handler = attach_log_file(run_dir, config.project, command)
    try:
        return _fit_and_test(config, dataset_cls, root, df, image_transform, shards_dir,
                             run_dir, progress)
    finally:
        detach_log_file(handler)


def _fit_and_test(config, dataset_cls, root, df, image_transform, shards_dir, run_dir,
                  progress) -> TrainResult:
    L.seed_everything(config.random_seed, workers=True, verbose=False)
    datasets = split_datasets(config, dataset_cls, root, df, image_transform, shards_dir)
    log.info("run %s: %s", run_dir, {k: len(v) for k, v in datasets.items()})
    module = SupervisedModule(config.model_dump(mode="json"), len(dataset_cls.BANDS),
                              len(dataset_cls.CLASS_NAMES))
    checkpoints = L.pytorch.callbacks.ModelCheckpoint(
        dirpath=run_dir / "checkpoints", filename="epoch{epoch:03d}",
        auto_insert_metric_name=False, monitor=config.checkpoint.monitor,
        mode=config.checkpoint.mode, save_top_k=config.checkpoint.save_top_k, save_last=True)
    trainer = L.Trainer(
        default_root_dir=run_dir,
        max_epochs=config.trainer.max_epochs,
        accelerator=config.trainer.accelerator,
        devices=config.trainer.devices,
        precision=config.trainer.precision,
        accumulate_grad_batches=config.trainer.accumulate_grad_batches,
        gradient_clip_val=config.trainer.gradient_clip_val,
        deterministic=config.trainer.deterministic,
        logger=False,
        callbacks=[checkpoints, EpochMetricsWriter(run_dir / "metrics.csv")],
        enable_progress_bar=progress,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    trainer.fit(module, make_loader(datasets["train"], config, shuffle=True),
                make_loader(datasets["val"], config, shuffle=False))
    best = Path(checkpoints.best_model_path or checkpoints.last_model_path)
    tested = trainer.test(module, make_loader(datasets["test"], config, shuffle=False),
                          ckpt_path=str(best), verbose=False)
    test_metrics = {k: float(v) for k, v in (tested[0] if tested else {}).items()}
    write_yaml(run_dir / "test_metrics.yaml", test_metrics | {"checkpoint": best.name})
    metrics = read_metrics(run_dir)
    metrics.to_parquet(run_dir / "metrics.parquet", index=False)
    return TrainResult(
        run_dir=run_dir,
        best_checkpoint=best,
        last_checkpoint=Path(checkpoints.last_model_path),
        metrics_csv=run_dir / "metrics.csv",
        epochs=int(metrics["epoch"].max()) + 1,
        test_metrics=test_metrics,
        chance_accuracy=chance_accuracy(df) if config.task == "classification" else None,
    )


def chance_accuracy(df: pd.DataFrame) -> float:
    """Test accuracy of always predicting the most frequent test class: the bar to beat."""
    test = df.loc[df["split"] == "test", "label_idx"]
    return float(test.value_counts(normalize=True).max())


def load_module(checkpoint: Path) -> SupervisedModule:
    """A trained module from a checkpoint, on CPU, in eval mode."""
    return SupervisedModule.load_from_checkpoint(checkpoint, map_location="cpu").eval()
