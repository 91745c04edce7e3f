"""A run directory as the complete specification of a run.

`prepare_run` writes everything a run is made from (config, dataset facts, the df, the
normalisation, where shards are) before training starts; `load_run` reads it back. Every
process that works on the run (the trainer, each DDP worker under torchrun, a resume, an
evaluation days later) starts from the directory alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from geovision.data.base import GeoDataset
from geovision.data.registry import get_dataset
from geovision.errors import WeightsError
from geovision.experiment.config import ExperimentConfig
from geovision.experiment.pretrained import recorded_weights, weights_record
from geovision.experiment.runfolders.folder import (
    HPARAMS_FILE,
    INDEX_FILE,
    new_run_dir,
    read_hparams,
    write_status,
    write_yaml,
)
from geovision.hashing import hash_dataframe
from geovision.io.atomic import atomic_file
from geovision.provenance import git_commit, package_versions

if TYPE_CHECKING:
    from geovision.models.weights import WeightsSpec


@dataclass
class RunInputs:
    run_dir: Path
    config: ExperimentConfig
    dataset_cls: type[GeoDataset]
    root: Path
    df: pd.DataFrame
    normalisation: dict[str, list[float]] | None
    shards_dir: Path | str | None  # a remote URI (s3://...) stays a str
    weights: dict[str, Any] | None = None  # the starting weights' record (weights_record)

    def image_transform(self) -> Callable | None:
        """Standardisation with the recorded statistics (None: the dataset's defaults)."""
        if self.normalisation is None:
            return None
        return self.dataset_cls.standardiser(self.normalisation["means"],
                                             self.normalisation["std_devs"])

    def starting_weights(self) -> WeightsSpec | None:
        """The recorded weights a fresh fit starts from (None: the model's own init)."""
        if self.weights is None:
            if self.config.model.weights is not None:
                raise WeightsError(f"{self.run_dir}: the config names model.weights "
                                   f"{self.config.model.weights!r} but hparams.yaml records no "
                                   "weights file; start a new run.")
            return None
        return recorded_weights(self.weights)


def prepare_run(config: ExperimentConfig, *, home: Path, root: Path, df: pd.DataFrame,
                normalisation: dict[str, list[float]] | None = None,
                shards_dir: Path | str | None = None,
                provenance: dict[str, Any] | None = None) -> Path:
    """Create the run directory and write hparams.yaml, the df and a `running` status.
    The starting weights are found first, so weights that are missing leave no run behind."""
    dataset_cls = get_dataset(config.dataset_name)
    weights = weights_record(config.model, home)
    run_dir = new_run_dir(config.project, config.name, home)
    with atomic_file(run_dir / INDEX_FILE) as tmp:
        df.to_parquet(tmp, index=True)
    write_yaml(run_dir / HPARAMS_FILE, {
        "config": config.model_dump(mode="json"),
        "config_hash": config.config_hash(),
        "dataset": dataset_cls.describe() | {"root": str(root), "df_hash": hash_dataframe(df)},
        "normalisation": normalisation,
        "shards_dir": None if shards_dir is None else str(shards_dir),
        "provenance": (provenance or {}) | {"packages": package_versions(),
                                            "git_commit": git_commit()}
        | ({"weights": weights} if weights is not None else {}),
    })
    write_status(run_dir, "running")
    return run_dir


def load_run(run_dir: Path) -> RunInputs:
    """What `prepare_run` wrote, validated again."""
    run_dir = Path(run_dir)
    hparams = read_hparams(run_dir)
    config = ExperimentConfig.model_validate(hparams["config"])
    shards = hparams.get("shards_dir")
    return RunInputs(run_dir=run_dir, config=config,
                     dataset_cls=get_dataset(config.dataset_name),
                     root=Path(hparams["dataset"]["root"]),
                     df=pd.read_parquet(run_dir / INDEX_FILE),
                     normalisation=hparams.get("normalisation"),
                     shards_dir=_shards_location(shards),
                     weights=(hparams.get("provenance") or {}).get("weights"))


def _shards_location(value: str | None) -> Path | str | None:
    """The recorded shards folder: a local Path, or a remote URI kept as it is."""
    from geovision.data.shards.streaming import is_remote

    if not value:
        return None
    return value if is_remote(value) else Path(value)
