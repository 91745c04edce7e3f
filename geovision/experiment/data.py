"""Datasets and DataLoaders for an experiment, from files or from shards."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset

from geovision.data.base import GeoDataset
from geovision.experiment.config import ConfigError, ExperimentConfig

TRAINING_SPLITS = ("train", "val", "test")


def split_datasets(config: ExperimentConfig, dataset_cls: type[GeoDataset], root: Path,
                   df: pd.DataFrame | None = None, image_transform: Callable | None = None,
                   shards_dir: Path | None = None) -> dict[str, Dataset]:
    """One dataset per split, read the way `config.data.source` says."""
    datasets = {split: dataset_cls(root, df=df, split=split, random_seed=config.random_seed,
                                   image_transform=image_transform)
                for split in TRAINING_SPLITS}
    source = config.data.source
    if source == "files":
        return datasets
    if shards_dir is None:
        raise ConfigError(f"data.source={source!r} needs shards: write them first "
                          "(the hdf_shards / streaming_shards assets) or use source: files.")
    if source == "hdf":
        from geovision.data.shards.hdf import HdfDataset

        return {split: HdfDataset(Path(shards_dir) / f"{split}.h5", ds.sample_transform)
                for split, ds in datasets.items()}
    from geovision.data.shards.streaming import StreamingGeoDataset

    return {split: StreamingGeoDataset(str(Path(shards_dir) / split), ds.sample_transform,
                                       cache_dir=Path(shards_dir) / ".cache" / split)
            for split, ds in datasets.items()}


def make_loader(dataset: Dataset, config: ExperimentConfig, shuffle: bool) -> DataLoader:
    """A DataLoader whose shuffling order depends only on the config's seed."""
    generator = torch.Generator().manual_seed(config.random_seed)
    workers = config.data.num_workers
    return DataLoader(dataset, batch_size=config.data.batch_size, shuffle=shuffle,
                      num_workers=workers, generator=generator,
                      persistent_workers=workers > 0)
