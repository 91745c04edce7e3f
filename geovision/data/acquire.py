"""Getting a registered dataset onto disk and fixing its index: the first two steps of every
pipeline, as plain functions (the Dagster assets call these)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from geovision.data.registry import get_dataset
from geovision.data.splits import SplitSettings
from geovision.errors import MissingDataError
from geovision.hashing import hash_dataframe, hash_manifest, sha256_file
from geovision.io.atomic import atomic_file
from geovision.layout import Layout


@dataclass
class RawDataset:
    name: str
    root: Path
    manifest_path: Path
    num_files: int
    num_bytes: int
    data_version: str


@dataclass
class DatasetIndex:
    name: str
    path: Path
    df: pd.DataFrame
    data_version: str


def acquire_dataset(name: str, home: Path | None = None) -> RawDataset:
    """Download (or generate) dataset `name` under the artifact root and record a sha256
    manifest of every file, whose hash is the raw data's version."""
    layout = Layout(home)
    dataset_cls = get_dataset(name)
    root = layout.dataset(name)
    dataset_cls.download_and_extract(root)
    files = sorted(p for p in root.rglob("*") if p.is_file())
    if not files:
        raise MissingDataError(f"{root} holds no files after download_and_extract; remove the "
                               "folder and run again.")
    manifest = {p.relative_to(root).as_posix(): sha256_file(p) for p in files}
    path = layout.manifest(name)
    with atomic_file(path) as tmp:
        tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return RawDataset(name=name, root=root, manifest_path=path, num_files=len(files),
                      num_bytes=sum(p.stat().st_size for p in files),
                      data_version=hash_manifest(manifest))


def build_index(name: str, home: Path | None = None,
                splits: SplitSettings | None = None) -> DatasetIndex:
    """Build the dataset's df (its identity: samples, labels, splits) and save it as parquet;
    `splits` defaults to the dataset's own settings."""
    layout = Layout(home)
    dataset_cls = get_dataset(name)
    df = dataset_cls.build_df(layout.dataset(name), splits)
    path = layout.index(name)
    with atomic_file(path) as tmp:
        df.to_parquet(tmp, index=True)
    return DatasetIndex(name=name, path=path, df=df, data_version=hash_dataframe(df))


def load_index(name: str, home: Path | None = None) -> pd.DataFrame:
    path = Layout(home).index(name)
    if not path.is_file():
        raise MissingDataError(f"No index for dataset {name!r} at {path}: materialize "
                               "dataset_index for it first (or call build_index).")
    return pd.read_parquet(path)
