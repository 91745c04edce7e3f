"""One MosaicML streaming (MDS) folder per split, local and optionally mirrored to a remote.

Columns are typed, fixed-shape ndarrays (`ndarray:<dtype>:<shape>`): no per-sample header and
no pickling. The reader is map-style (shuffled by the DataLoader's sampler like the other
readers) over a StreamingDataset, which fetches and caches shards from the remote on demand.
"""

from __future__ import annotations

import json
import logging
import mmap
import os
import urllib.parse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

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
from geovision.data.temporal import TimeSeries
from geovision.errors import ConfigError, MissingDataError
from geovision.hashing import hash_directory
from geovision.io.atomic import atomic_dir
from geovision.layout import Layout

DEFAULT_SIZE_LIMIT = 1 << 26  # 64 MiB of uncompressed samples per shard
ATTRIBUTES_FILE = "geovision.json"
INDEX_FILE = "index.json"
_shared_memory_cleaned = False


def _ndarray_column(dtype: np.dtype, shape: Sequence[int]) -> str:
    return f"ndarray:{np.dtype(dtype).name}:{','.join(map(str, shape))}"


def write_streaming(dataset: GeoDataset, out_dir: str | os.PathLike, *,
                    remote: str | None = None, compression: str | None = None,
                    size_limit: int | str = DEFAULT_SIZE_LIMIT,
                    progress: bool = True) -> ShardWriteResult:
    """Write every sample of `dataset` (one split) as MDS shards into `out_dir`, atomically.

    `compression` is any streaming codec ("zstd", "zstd:7", "gz", "br", ...). With `remote`
    (any URI streaming can upload to: s3://, gs://, ..., or a local path), the finished folder
    is uploaded there, index.json last, so readers never see an index without its shards.
    """
    from streaming import MDSWriter
    from streaming.base.compression import get_compressions

    if compression is not None and compression not in get_compressions():
        raise ConfigError(f"Unknown streaming compression {compression!r}; use None or one of "
                          f"{sorted(get_compressions())}.")
    out_dir = Path(out_dir)
    layout = record_layout(dataset)
    columns = {"image": _ndarray_column(layout.image_dtype, layout.image_shape),
               "df_idx": "int64"}
    target_name = TARGET_NAMES[dataset.TASK]
    if layout.mask_shape is None:
        columns["label"] = "int64"
    else:
        columns[target_name] = _ndarray_column(layout.mask_dtype, layout.mask_shape)
    length = layout.series_length
    if length is not None:  # a time series: its days and padding mask (bool as uint8)
        columns["days"] = _ndarray_column(np.int32, (length,))
        columns["valid"] = _ndarray_column(np.uint8, (length,))
    desc = f"{dataset.NAME} {dataset.split} -> {out_dir.name}"
    with atomic_dir(out_dir) as tmp:
        with MDSWriter(out=str(tmp), columns=columns, compression=compression,
                       size_limit=size_limit) as writer:
            for image, target, df_idx in iter_records(dataset, layout, progress, desc):
                if length is None:
                    sample = {"image": image, "df_idx": int(df_idx)}
                else:
                    sample = {"image": image.images, "days": image.days,
                              "valid": image.valid.astype(np.uint8), "df_idx": int(df_idx)}
                if layout.mask_shape is None:
                    sample["label"] = int(target)
                else:
                    sample[target_name] = target
                writer.write(sample)
        attributes = shard_attributes(dataset, layout)
        (tmp / ATTRIBUTES_FILE).write_text(json.dumps(attributes, indent=1, sort_keys=True))
    if remote is not None:
        upload_directory(out_dir, remote)
    num_bytes = sum(p.stat().st_size for p in out_dir.iterdir() if p.is_file())
    return ShardWriteResult(path=out_dir, count=len(dataset), sha256=hash_directory(out_dir),
                            num_bytes=num_bytes, remote=remote)


def write_streaming_splits(dataset_cls: type[GeoDataset], root: str | os.PathLike,
                           out_dir: str | os.PathLike, *, df: pd.DataFrame | None = None,
                           splits: Sequence[str] = ("train", "val", "test"),
                           remote: str | None = None,
                           **kwargs: Any) -> dict[str, ShardWriteResult]:
    """Write the MDS folder `<out_dir>/<split>` (mirrored to `<remote>/<split>`) for each split
    of a dataset; kwargs go to `write_streaming`.

    `df` defaults to the dataset's default df. A missing image stops the write naming the
    file, as a corrupt one does.
    """
    df = dataset_cls.build_df(root) if df is None else df
    return {split: write_streaming(
                dataset_cls(root, df=df, split=split, check_files=False), Path(out_dir) / split,
                remote=None if remote is None else f"{remote.rstrip('/')}/{split}", **kwargs)
            for split in splits}


def upload_directory(local_dir: str | os.PathLike, remote: str) -> None:
    """Copy a finished MDS folder to `remote` with streaming's uploaders, index.json last."""
    from streaming.base.storage.upload import CloudUploader

    local_dir = Path(local_dir)
    # The uploader warns that the (finished, on purpose non-empty) local folder is not empty.
    upload_logger = logging.getLogger(CloudUploader.__module__)
    level = upload_logger.level
    upload_logger.setLevel(logging.ERROR)
    try:
        uploader = CloudUploader.get(out=(str(local_dir), remote), keep_local=True,
                                     exist_ok=True)
    finally:
        upload_logger.setLevel(level)
    names = sorted((p.name for p in local_dir.iterdir() if p.is_file()),
                   key=lambda name: (name == INDEX_FILE, name))
    for name in names:
        uploader.upload_file(name)


def is_remote(location: str | os.PathLike) -> bool:
    """Whether `location` is a URI (s3://, gs://, ...) rather than a local path."""
    return urllib.parse.urlparse(str(location)).scheme != ""


def join_location(location: str | os.PathLike, name: str) -> str:
    """`location`/`name` for a local folder or a remote URI alike."""
    return f"{str(location).rstrip('/')}/{name}"


def read_attributes(location: str | os.PathLike) -> dict[str, Any]:
    """The geovision.json of an MDS folder, local or on S3 (read through S3IO with
    `S3_ENDPOINT_URL` and the standard AWS credentials, as streaming reads the shards)."""
    path = join_location(location, ATTRIBUTES_FILE)
    if not is_remote(path):
        return json.loads(Path(path).read_text())
    if not path.startswith("s3://"):
        raise ConfigError(f"remote MDS folder {location}: only s3:// attributes are read")
    from geovision.io.s3 import S3IO

    return json.loads(S3IO(endpoint_url=os.environ.get("S3_ENDPOINT_URL") or None)
                      .read_bytes(path))


def default_cache_dir(location: str) -> Path:
    """A cache folder of its own for each remote location (so for each split)."""
    return Layout().streaming_cache(location)


def clean_stale_shared_memory_once() -> None:
    """Free shared memory left by crashed streaming runs, before this process opens any.

    Only once per process: the cleaner frees every streaming segment it finds, so calling it
    again would pull the segments from under datasets this process already opened.
    """
    global _shared_memory_cleaned
    if not _shared_memory_cleaned:
        from streaming.base.util import clean_stale_shared_memory

        clean_stale_shared_memory()
        _shared_memory_cleaned = True


class StreamingGeoDataset(Dataset):
    """Map-style reader of a `write_streaming` folder, returning the map-style dataset's tuples.

    `local_or_remote` is the MDS folder or a remote URI. With `cache_dir` (or for a remote,
    always) shards are fetched into that folder, which must be this split's own; a local folder
    without `cache_dir` is read in place. Extra keyword arguments go to StreamingDataset.
    """

    def __init__(self, local_or_remote: str | os.PathLike, sample_transform: Callable | None,
                 cache_dir: str | os.PathLike | None = None, **streaming_kwargs: Any) -> None:
        from streaming import StreamingDataset

        location = str(local_or_remote)
        if not is_remote(location) and not (Path(location) / INDEX_FILE).is_file():
            raise MissingDataError(f"No MDS index at {Path(location) / INDEX_FILE}: write the "
                                   "shards first (`geovision train` writes missing shards, as "
                                   "do the streaming_shards asset and write_streaming_splits).")
        if cache_dir is None and not is_remote(location):
            local, remote = location, None
        else:
            local = str(cache_dir if cache_dir is not None else default_cache_dir(location))
            remote = location
        clean_stale_shared_memory_once()
        self.location = location
        self.sample_transform = sample_transform
        self.streaming = StreamingDataset(local=local, remote=remote, **streaming_kwargs)
        columns = self.streaming.shards[0].column_names
        self._target_name = next(name for name in TARGET_NAMES.values() if name in columns)
        layouts = [_fixed_layout(shard) for shard in self.streaming.shards]
        self._layouts = layouts if all(layout is not None for layout in layouts) else None
        self._maps: dict[str, mmap.mmap] = {}
        self._maps_pid = os.getpid()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_maps"] = {}  # memory maps stay in the process that made them
        return state

    def __len__(self) -> int:
        return self.streaming.num_samples

    def _record(self, index: int) -> tuple[np.ndarray, Any, int]:
        index = check_index(index, len(self))
        sample = self._local_sample(index) if self._layouts is not None else None
        if sample is None:
            sample = self.streaming.get_item(index)
        name = self._target_name
        target = int(sample["label"][()]) if name == "label" else sample[name]
        image = as_series(sample["image"], sample.get("days"), sample.get("valid"))
        return image, target, int(sample["df_idx"][()])

    def _local_sample(self, index: int) -> dict[str, Any] | None:
        """The sample's columns as read-only views of its shard file, mapped into memory once
        per process; None while the shard is not in the local folder (remote, compressed or
        evicted: `get_item` then fetches it).

        Streaming's own reader opens the file, copies the sample's bytes and every column
        again, and parses each column's encoding, for every sample. Our columns have fixed
        sizes, so each is a view at a fixed place in the sample (the MDS shard file is the
        sample count, a table of uint32 sample offsets, then the samples)."""
        shard_id, shard_index = self.streaming.spanner[index]
        shard = self.streaming.shards[shard_id]
        mapped = self._mapped(os.path.join(shard.dirname, shard.split, shard.raw_data.basename))
        if mapped is None:
            return None
        begin, end = (int(v) for v in np.frombuffer(mapped, np.uint32, 2, (1 + shard_index) * 4))
        if end > len(mapped):
            raise OSError(f"{shard.raw_data.basename}: sample {shard_index} ends past the end "
                          "of the file; the shard is truncated. Write the shards again.")
        return {name: np.frombuffer(mapped, dtype, count, begin + offset).reshape(shape)
                for name, offset, dtype, count, shape in self._layouts[shard_id]}

    def _mapped(self, path: str) -> mmap.mmap | None:
        if self._maps_pid != os.getpid():
            self._maps, self._maps_pid = {}, os.getpid()
        if path not in self._maps:
            try:
                with open(path, "rb") as raw:  # the map stays valid once the file is closed
                    self._maps[path] = mmap.mmap(raw.fileno(), 0, access=mmap.ACCESS_READ)
            except FileNotFoundError:
                return None
        return self._maps[path]

    def read_raw(self, index: int) -> tuple[np.ndarray, Any, int]:
        """The stored sample: (image array, label int or mask array, df_idx)."""
        image, target, df_idx = self._record(index)
        # Decoded arrays may view read-only buffers; copies are writable like every other
        # reader's.
        return _copy(image), target if isinstance(target, int) else np.array(target), df_idx

    def __getitem__(self, index: int) -> tuple[Any, Any, int]:
        return self.__getitems__([index])[0]

    def read_raw_batch(self, indices: Sequence[int], *, views: bool = False
                       ) -> tuple[list[np.ndarray], list, list[int]]:
        """The stored samples at `indices`: (images, targets, df_idx), each image a (C, H, W)
        array (a list, not stacked: the batch transform writes each into its slot). With
        `views`, images come as read-only views of the shards instead of copies."""
        records = [self._record(int(i)) for i in indices]
        images = [image if views else _copy(image) for image, _, _ in records]
        targets = [t if isinstance(t, int) else np.array(t) for _, t, _ in records]
        return images, targets, [i for _, _, i in records]

    def __getitems__(self, indices: Sequence[int]) -> list[tuple[Any, Any, int]]:
        return transform_batch(self.sample_transform, *self.read_raw_batch(indices))


def _copy(image: Any) -> Any:
    """A writable copy of a stored image (a TimeSeries's days and valid are copies already)."""
    if isinstance(image, TimeSeries):
        return image._replace(images=np.array(image.images))
    return np.array(image)


Column = tuple[str, int, np.dtype, int, tuple[int, ...]]  # name, offset, dtype, count, shape


def _fixed_layout(shard: Any) -> list[Column] | None:
    """Where each column of a sample lies, when every column has a fixed size (int64 and
    shaped ndarray columns, as write_streaming writes them); None otherwise."""
    layout, offset = [], 0
    for name, encoding, size in zip(shard.column_names, shard.column_encodings,
                                    shard.column_sizes, strict=True):
        parts = encoding.split(":")
        if encoding == "int64":
            dtype, shape = np.dtype(np.int64), ()
        elif parts[0] == "ndarray" and len(parts) == 3:
            dtype, shape = np.dtype(parts[1]), tuple(int(n) for n in parts[2].split(","))
        else:
            return None
        count = int(np.prod(shape))
        if size != count * dtype.itemsize:
            return None
        layout.append((name, offset, dtype, count, shape))
        offset += size
    return layout
