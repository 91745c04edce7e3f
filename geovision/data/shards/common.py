"""What both shard formats share: the records they store, their attributes, and batch reads."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from geovision.data.base import GeoDataset
from geovision.data.temporal import TimeSeries
from geovision.errors import DataError
from geovision.hashing import hash_dataframe

FORMAT_VERSION = 1
# What a shard calls each task's target: an int label, a per-pixel mask, a multi-hot vector.
TARGET_NAMES = {"classification": "label", "segmentation": "mask", "multilabel": "multi_hot"}


@dataclass(frozen=True)
class ShardWriteResult:
    """One written split: where it is, how many samples, and a content hash (its data version)."""

    path: Path
    count: int
    sha256: str
    num_bytes: int
    remote: str | None = None


@dataclass(frozen=True)
class RecordLayout:
    """Shape and dtype of every stored image (and mask), fixed by a split's first sample.
    For a time series, `image_shape` is (T, C, H, W) and `series_length` is T: the shard
    also stores each sample's `days` (T,) and `valid` (T,) arrays."""

    image_shape: tuple[int, ...]
    image_dtype: np.dtype
    mask_shape: tuple[int, ...] | None
    mask_dtype: np.dtype | None
    series_length: int | None = None


def shard_attributes(dataset: GeoDataset, layout: RecordLayout) -> dict[str, Any]:
    """The facts stored with a shard so it can be traced to the df and classes it came from."""
    return {
        "format_version": FORMAT_VERSION,
        "name": dataset.NAME,
        "task": dataset.TASK,
        "split": dataset.split,
        "count": len(dataset),
        "class_names": list(dataset.CLASS_NAMES),
        "bands": list(dataset.BANDS),
        "means": None if dataset.MEANS is None else list(dataset.MEANS),
        "std_devs": None if dataset.STD_DEVS is None else list(dataset.STD_DEVS),
        "df_hash": hash_dataframe(dataset.df),
        "image_shape": list(layout.image_shape),
        "image_dtype": layout.image_dtype.str,
    }


def record_layout(dataset: GeoDataset) -> RecordLayout:
    """The layout of `dataset`'s samples, read from its first one."""
    if len(dataset) == 0:
        raise DataError(f"{dataset.NAME} split {dataset.split!r} has no samples: there is "
                        "nothing to write. Choose splits that hold samples.")
    image, target, _ = dataset.read_raw(0)
    mask = target if isinstance(target, np.ndarray) else None  # a mask or a multi-hot vector
    return RecordLayout(tuple(image.shape), image.dtype, None if mask is None else mask.shape,
                        None if mask is None else mask.dtype,
                        len(image.days) if isinstance(image, TimeSeries) else None)


def as_series(images: np.ndarray, days: np.ndarray | None, valid: np.ndarray | None
              ) -> np.ndarray | TimeSeries:
    """A stored record's image as the dataset returns it: the array, or for a time series
    (`days` given) the TimeSeries of its arrays."""
    if days is None:
        return images
    return TimeSeries(images, np.array(days, dtype=np.int32), np.array(valid, dtype=bool))


def iter_records(dataset: GeoDataset, layout: RecordLayout, progress: bool, desc: str
                 ) -> Iterator[tuple[np.ndarray, Any, int]]:
    """Every stored sample of `dataset` in order, refusing any that breaks the layout."""
    for index in tqdm(range(len(dataset)), desc=desc, unit="img", leave=True,
                      disable=not progress):
        image, target, df_idx = dataset.read_raw(index)
        path = dataset.split_df["image_path"].iloc[index]
        if tuple(image.shape) != layout.image_shape or image.dtype != layout.image_dtype:
            raise DataError(
                f"Image {path} is {image.dtype} {image.shape} but the split's first image is "
                f"{layout.image_dtype} {layout.image_shape}; shards store one image size and "
                "dtype per split: tile or resize the dataset to one size first.")
        if layout.mask_shape is not None and (target.shape != layout.mask_shape
                                              or target.dtype != layout.mask_dtype):
            raise DataError(f"The mask of {path} is {target.dtype} {target.shape}, not "
                            f"{layout.mask_dtype} {layout.mask_shape} like the split's first.")
        yield image, target, df_idx


def check_index(index: int, length: int) -> int:
    """`index` as a non-negative position, or IndexError as the map-style dataset raises."""
    if not -length <= index < length:
        raise IndexError(f"index {index} out of range for {length} samples")
    return index % length


def transform_batch(sample_transform: Callable | None, images: Sequence[np.ndarray],
                    targets: Sequence[Any], df_idx: Sequence[int]) -> list[tuple[Any, Any, int]]:
    """The map-style dataset's tuples for a batch of stored samples.

    The transform runs per sample, as in the map-style dataset: on one image at a time its
    intermediates stay in cache, which makes it faster than one pass over the whole batch.
    """
    if sample_transform is None:
        return list(zip(images, targets, df_idx, strict=True))
    samples = []
    for image, target, i in zip(images, targets, df_idx, strict=True):
        image, target = sample_transform(image, target)
        samples.append((image, target, i))
    return samples
