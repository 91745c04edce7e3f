"""Content hashes used as data versions: same content, same hash, on every machine."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pandas as pd

CHUNK = 1 << 20


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def hash_dataframe(df: pd.DataFrame) -> str:
    """Hash of a frame's columns, dtypes, index and values, independent of pandas' pickling.

    Columns holding arrays (e.g. per-image histograms) are hashed by each array's bytes.
    """
    h = hashlib.sha256()
    h.update(repr(list(df.columns)).encode())
    h.update(repr([str(t) for t in df.dtypes]).encode())
    h.update(pd.util.hash_pandas_object(df.index).values.tobytes())
    for name in df.columns:
        column = df[name]
        if column.dtype == object and any(isinstance(v, np.ndarray | list) for v in column):
            for value in column:
                array = np.asarray(value)
                h.update(f"{array.dtype.str}{array.shape}".encode())
                h.update(np.ascontiguousarray(array).tobytes())
        else:
            h.update(pd.util.hash_pandas_object(column, index=False).values.tobytes())
    return h.hexdigest()


def hash_directory(root: str | os.PathLike) -> str:
    """Hash of every file's relative path and content below `root`, in sorted order."""
    root = Path(root)
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(path.relative_to(root).as_posix().encode())
        h.update(b"\0")
        h.update(sha256_file(path).encode())
    return h.hexdigest()


def hash_manifest(manifest: dict[str, str]) -> str:
    """Hash of a {relative path: sha256} manifest."""
    h = hashlib.sha256()
    for rel in sorted(manifest):
        h.update(f"{rel}\0{manifest[rel]}\n".encode())
    return h.hexdigest()
