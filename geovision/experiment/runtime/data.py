"""Datasets and DataLoaders for an experiment, from files or from shards."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from geovision.data.base import GeoDataset
from geovision.experiment.config import ConfigError, ExperimentConfig
from geovision.hashing import hash_dataframe

TRAINING_SPLITS = ("train", "val", "test")


def split_frame(config: ExperimentConfig, dataset_cls: type[GeoDataset], root: Path,
                index: pd.DataFrame | None = None) -> pd.DataFrame:
    """The df a run splits by: `index` (the dataset_index asset's df, or the dataset's own
    default split when None) unless the config's `data.split` asks for other settings."""
    split = config.data.split
    if split.is_default():
        return index if index is not None else dataset_cls.build_df(root)
    return dataset_cls.build_df(root, split.settings_for(dataset_cls))


def split_datasets(config: ExperimentConfig, dataset_cls: type[GeoDataset], root: Path,
                   df: pd.DataFrame, image_transform: Callable | None = None,
                   shards_dir: Path | str | None = None,
                   splits: tuple[str, ...] = TRAINING_SPLITS,
                   streaming_cache: Callable[[str], Path] | None = None) -> dict[str, Dataset]:
    """One dataset per split of `df`, read the way `config.data.source` says.

    Shards must have been written from this very df (its hash is stored with them), so a
    model never trains on splits other than the ones recorded for it. MDS shards may be a
    remote prefix (s3://...): MosaicML streaming then fetches them into
    `streaming_cache(split)`, a folder of this run's own.
    """
    datasets = {split: dataset_cls(root, df=df, split=split, image_transform=image_transform)
                for split in splits}
    source = config.data.source
    if source == "files":
        return datasets
    if shards_dir is None:
        raise ConfigError(f"data.source={source!r} needs shards: write them first "
                          "(the hdf_shards / streaming_shards assets) or use source: files.")
    expected = hash_dataframe(df)
    if source == "hdf":
        from geovision.data.shards.hdf import HdfDataset, split_file

        shards_dir = Path(shards_dir)
        readers = {split: HdfDataset(split_file(shards_dir, split), ds.sample_transform)
                   for split, ds in datasets.items()}
        stored = {split: reader.attrs.get("df_hash") for split, reader in readers.items()}
    else:
        from geovision.data.shards.streaming import (
            StreamingGeoDataset,
            is_remote,
            join_location,
            read_attributes,
        )

        remote = is_remote(str(shards_dir))
        shards_dir = str(shards_dir) if remote else Path(shards_dir)
        locations = {split: join_location(shards_dir, split) for split in datasets}
        readers = {split: StreamingGeoDataset(
                       locations[split], ds.sample_transform,
                       cache_dir=streaming_cache(split) if remote and streaming_cache else None)
                   for split, ds in datasets.items()}  # local shards are read in place
        stored = {split: read_attributes(locations[split]).get("df_hash") for split in readers}
    stale = sorted(split for split, value in stored.items() if value != expected)
    if stale:
        raise ConfigError(f"The {source} shards in {shards_dir} (splits {stale}) were written "
                          "from a different dataset index than this run uses; rewrite them "
                          "from this index (materialize the shard asset again).")
    return readers


def run_streaming_cache(run_dir: Path) -> Callable[[str], Path]:
    """split -> the run's own cache folder for remote MDS shards (see split_datasets)."""
    from geovision.layout import Layout

    return lambda split: Layout.of_run(run_dir).run_streaming_cache(run_dir, split)


def make_loader(dataset: Dataset, config: ExperimentConfig, shuffle: bool, *, rank: int = 0,
                world_size: int = 1) -> DataLoader:
    """A DataLoader whose order depends only on the config's seed and the epoch.

    The sampler reshuffles from `seed + epoch` (Lightning calls its set_epoch), never from the
    history of a random stream, so a resumed run and an uninterrupted one see the same
    batches. With `world_size` > 1 each process reads its own share (DDP).
    """
    sampler = DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=shuffle,
                                 seed=config.random_seed)
    workers = config.data.num_workers
    return DataLoader(dataset, batch_size=config.data.batch_size, sampler=sampler,
                      num_workers=workers, persistent_workers=workers > 0)
