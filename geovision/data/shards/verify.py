"""Read-back checks: a shard holds exactly the source's stored samples."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any, Protocol

import numpy as np


class RawReader(Protocol):
    def read_raw(self, index: int) -> tuple[np.ndarray, Any, int]: ...


def record_digest(image: np.ndarray, target: Any, df_idx: int) -> str:
    """sha256 of a stored sample: dtypes, shapes and bytes of image and target, and df_idx."""
    h = hashlib.sha256()
    parts = tuple(image) if isinstance(image, tuple) else (image,)  # a TimeSeries: each array
    for array in (*map(np.asarray, parts), np.asarray(target), np.asarray(df_idx, np.int64)):
        if array.ndim == 0 and np.issubdtype(array.dtype, np.integer):
            array = array.astype(np.int64)  # a label is the same whether int or np.int64
        h.update(f"{array.dtype.str}{array.shape}".encode())
        h.update(np.ascontiguousarray(array).tobytes())
    return h.hexdigest()


def compare_with_source(reader: RawReader, dataset: RawReader, indices: Iterable[int]
                        ) -> list[int]:
    """The indices whose record in `reader` differs from `dataset`'s (or is missing)."""
    mismatched = []
    for index in indices:
        try:
            stored = record_digest(*reader.read_raw(index))
        except IndexError:
            mismatched.append(index)
            continue
        if stored != record_digest(*dataset.read_raw(index)):
            mismatched.append(index)
    return mismatched


def sample_indices(length: int, count: int, random_seed: int = 0) -> list[int]:
    """`count` distinct indices out of `length`, always including the first and last."""
    if length <= count:
        return list(range(length))
    rng = np.random.default_rng(random_seed)
    middle = rng.choice(np.arange(1, length - 1), size=max(count - 2, 0), replace=False)
    return sorted({0, length - 1, *middle.tolist()})
