"""One HDF5 file per split: one chunk per image, optional LZF, read back lazily per worker.

Layout: `image` (N, C, H, W) in the stored dtype, `label` (N,) int64, `mask` (N, H, W) or
`multi_hot` (N, K), `df_idx` (N,) int64, and the dataset's facts as file attributes. A time
series dataset stores `image` (N, T, C, H, W) padded, with `days` (N, T) int32 and `valid`
(N, T) bool.

Uncompressed is the default: a row stored in its own unfiltered chunk is read straight
from a read-only memory map of the file at the chunk's address (an ordinary HDF5 file;
h5py's own per-read overhead is several times the copy). The batch loader converts such
rows from the map without copying them at all. LZF, optional, saves disk space on
compressible imagery and is read through h5py; it decompresses several times faster than
gzip.
"""

from __future__ import annotations

import json
import mmap
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd
from torch.utils.data import Dataset

from geovision.data.base import GeoDataset
from geovision.data.shards.common import (
    TARGET_NAMES,
    ShardWriteResult,
    as_series,
    check_index,
    iter_records,
    record_layout,
    shard_attributes,
    transform_batch,
)
from geovision.errors import ConfigError, MissingDataError
from geovision.hashing import sha256_file
from geovision.io.atomic import atomic_file

COMPRESSIONS = ("lzf", None)


def write_hdf(dataset: GeoDataset, path: str | os.PathLike, *, compression: str | None = None,
              progress: bool = True) -> ShardWriteResult:
    """Write every sample of `dataset` (one split) to the HDF5 file `path`, atomically."""
    if compression not in COMPRESSIONS:
        raise ConfigError(f"compression={compression!r}; use one of {COMPRESSIONS}.")
    path = Path(path)
    layout = record_layout(dataset)
    n = len(dataset)
    target_name = TARGET_NAMES[dataset.TASK]
    with atomic_file(path) as tmp, h5py.File(tmp, "w") as f:
        # No timestamps, so the same samples always give the same bytes (and sha256).
        options = {"compression": compression, "track_times": False}
        images = f.create_dataset("image", (n, *layout.image_shape), layout.image_dtype,
                                  chunks=(1, *layout.image_shape), **options)
        if layout.mask_shape is None:
            targets = f.create_dataset("label", (n,), np.int64, track_times=False)
        else:
            targets = f.create_dataset(target_name, (n, *layout.mask_shape), layout.mask_dtype,
                                       chunks=(1, *layout.mask_shape), **options)
        length = layout.series_length
        if length is not None:
            days = f.create_dataset("days", (n, length), np.int32, track_times=False)
            valid = f.create_dataset("valid", (n, length), bool, track_times=False)
        df_idx = np.empty(n, dtype=np.int64)
        desc = f"{dataset.NAME} {dataset.split} -> {path.name}"
        for i, (image, target, idx) in enumerate(iter_records(dataset, layout, progress, desc)):
            if length is None:
                images[i] = image
            else:
                images[i], days[i], valid[i] = image.images, image.days, image.valid
            targets[i] = target
            df_idx[i] = idx
        f.create_dataset("df_idx", data=df_idx, track_times=False)
        for key, value in shard_attributes(dataset, layout).items():
            f.attrs[key] = json.dumps(value)
        f.attrs["target"] = json.dumps(target_name)
    return ShardWriteResult(path=path, count=n, sha256=sha256_file(path),
                            num_bytes=path.stat().st_size)


def split_file(folder: str | os.PathLike, split: str) -> Path:
    """The HDF5 file of one split in a folder of `write_hdf_splits`."""
    return Path(folder) / f"{split}.h5"


def write_hdf_splits(dataset_cls: type[GeoDataset], root: str | os.PathLike,
                     out_dir: str | os.PathLike, *, df: pd.DataFrame | None = None,
                     splits: Sequence[str] = ("train", "val", "test"),
                     **kwargs: Any) -> dict[str, ShardWriteResult]:
    """Write `<out_dir>/<split>.h5` for each split of a dataset; kwargs go to `write_hdf`.

    `df` defaults to the dataset's default df. A missing image stops the write naming the
    file, as a corrupt one does.
    """
    df = dataset_cls.build_df(root) if df is None else df
    return {split: write_hdf(dataset_cls(root, df=df, split=split, check_files=False),
                             split_file(out_dir, split), **kwargs)
            for split in splits}


class HdfDataset(Dataset):
    """Map-style reader of a `write_hdf` file, returning the map-style dataset's tuples.

    The file is opened on first access in each process: an HDF5 handle must not cross a
    DataLoader's fork or spawn. `sample_transform=None` returns the stored arrays. A
    DataLoader fetches a whole batch through `__getitems__`, reading its chunks in file order.
    """

    def __init__(self, path: str | os.PathLike, sample_transform: Callable | None) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise MissingDataError(f"HDF5 shard {self.path} not found: write it first "
                                   "(`geovision train` writes missing shards, as do the "
                                   "hdf_shards asset and write_hdf_splits).")
        with h5py.File(self.path, "r") as f:
            self.attrs: dict[str, Any] = {k: json.loads(v) for k, v in f.attrs.items()}
            self._length = len(f["df_idx"])
        self.sample_transform = sample_transform
        self._target_name = self.attrs["target"]
        self._handles: tuple[Any, ...] | None = None
        self._pid: int | None = None

    def _open(self) -> tuple[_RowReader, _RowReader | None, np.ndarray, np.ndarray | None]:
        if self._handles is None or self._pid != os.getpid():
            f = h5py.File(self.path, "r")
            with open(self.path, "rb") as raw:  # the map stays valid once the file is closed
                mapped = mmap.mmap(raw.fileno(), 0, access=mmap.ACCESS_READ)
            labels = f["label"][:] if self._target_name == "label" else None
            masks = (_RowReader(f[self._target_name], mapped)
                     if self._target_name != "label" else None)
            series = (f["days"][:], f["valid"][:]) if "days" in f else (None, None)
            self._handles = (f, mapped, _RowReader(f["image"], mapped), masks,
                             f["df_idx"][:], labels, series)
            self._pid = os.getpid()
        _, _, images, masks, df_idx, labels, _ = self._handles
        return images, masks, df_idx, labels

    def _image(self, image: np.ndarray, position: int) -> np.ndarray | Any:
        """The stored image at `position` as the dataset returns it (a TimeSeries for a time
        series dataset)."""
        days, valid = self._handles[-1]
        if days is None:
            return image
        return as_series(image, days[position], valid[position])

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_handles"] = state["_pid"] = None
        return state

    def __len__(self) -> int:
        return self._length

    def read_raw(self, index: int) -> tuple[np.ndarray, Any, int]:
        """The stored sample: (image array, label int or mask array, df_idx)."""
        index = check_index(index, self._length)
        images, masks, df_idx, labels = self._open()
        target = int(labels[index]) if masks is None else masks.read(index)
        return self._image(images.read(index), index), target, int(df_idx[index])

    def __getitem__(self, index: int) -> tuple[Any, Any, int]:
        return self.__getitems__([index])[0]

    def read_raw_batch(self, indices: Sequence[int], *, views: bool = False
                       ) -> tuple[list[np.ndarray], list, list[int]]:
        """The stored samples at `indices`: (images, targets, df_idx), each image a (C, H, W)
        array (a list, not stacked: the batch transform writes each into its slot). With
        `views`, raw rows come as read-only views of the mapped file instead of copies."""
        positions = [check_index(int(i), self._length) for i in indices]
        images, masks, df_idx, labels = self._open()
        batch = [self._image(image, p) for image, p in
                 zip(images.read_rows(positions, views=views), positions, strict=True)]
        if masks is None:
            targets = [int(labels[p]) for p in positions]
        else:
            targets = masks.read_rows(positions, views=views)
        return batch, targets, [int(df_idx[p]) for p in positions]

    def __getitems__(self, indices: Sequence[int]) -> list[tuple[Any, Any, int]]:
        return transform_batch(self.sample_transform, *self.read_raw_batch(indices))


class _RowReader:
    """Reads rows of one (N, ...) dataset of an open file: straight from the memory-mapped
    file where each row is stored raw at a known address (uncompressed, one chunk per row,
    native byte order), else through h5py."""

    def __init__(self, data: h5py.Dataset, mapped: mmap.mmap) -> None:
        self.data, self.mapped = data, mapped
        self.row_shape, self.dtype = data.shape[1:], data.dtype
        self.row_values = int(np.prod(self.row_shape))
        self.offsets = _row_addresses(data)

    def read(self, position: int, *, view: bool = False) -> np.ndarray:
        """Row `position` as a new array, or (`view`, raw rows only) a read-only view of the
        mapped file."""
        if self.offsets is None:
            return self.data[position]
        start = int(self.offsets[position])
        if start + self.row_values * self.dtype.itemsize > len(self.mapped):
            raise OSError(f"{self.data.file.filename}: row {position} of {self.data.name} "
                          "ends past the end of the file; it is truncated. Write the shards "
                          "again.")
        row = np.frombuffer(self.mapped, self.dtype, self.row_values, start)
        return row.reshape(self.row_shape) if view else row.reshape(self.row_shape).copy()

    def read_rows(self, positions: Sequence[int], *, views: bool = False) -> list[np.ndarray]:
        """Rows at `positions`, read in file order."""
        rows: list[Any] = [None] * len(positions)
        for k in np.argsort(positions, kind="stable"):
            rows[k] = self.read(positions[k], view=views)
        return rows


def _row_addresses(data: h5py.Dataset) -> np.ndarray | None:
    """File address of each row when every row is one raw chunk; None otherwise."""
    unfiltered = data.id.get_create_plist().get_nfilters() == 0
    one_chunk_per_row = data.chunks == (1, *data.shape[1:])
    if not (unfiltered and one_chunk_per_row and data.dtype.isnative
            and data.file.userblock_size == 0 and data.shape[0] > 0):
        return None
    addresses = np.full(data.shape[0], -1, dtype=np.int64)

    def record(chunk: Any) -> None:
        addresses[chunk.chunk_offset[0]] = chunk.byte_offset

    data.id.chunk_iter(record)
    return addresses if (addresses >= 0).all() else None
