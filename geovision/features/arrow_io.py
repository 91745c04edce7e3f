"""Region features on disk: a HuggingFace `datasets` Arrow dataset, and the classic LXMERT TSV.

One row per image. Every row holds `num_objects` slots; the first `num_boxes` are real, the
rest are zeros (ids -1), so the columns have fixed shapes and read straight into tensors.
Next to the Arrow files, `region_features.json` records how the features were made (weights,
random or not, configuration, versions).
"""

from __future__ import annotations

import base64
import csv
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from geovision.errors import ConfigError, DataError, MissingDataError
from geovision.features.selection import normalize_boxes
from geovision.io.atomic import atomic_dir, atomic_file

INFO_FILE = "region_features.json"
TSV_FIELDS = ("img_id", "img_h", "img_w", "objects_id", "objects_conf", "attrs_id",
              "attrs_conf", "num_boxes", "boxes", "features")
# The TSV's fixed dtypes: ids int64, everything else float32.
TSV_DTYPES = {"objects_id": np.int64, "objects_conf": np.float32, "attrs_id": np.int64,
              "attrs_conf": np.float32, "boxes": np.float32, "features": np.float32}
PER_BOX = ("objects_id", "objects_conf", "attrs_id", "attrs_conf")
COLUMNS = ("img_id", "img_h", "img_w", "num_boxes", *PER_BOX, "boxes", "normalized_boxes",
           "roi_features")


def region_features_schema(num_objects: int, feature_dim: int):
    """The Arrow schema (datasets.Features) of a region-feature dataset."""
    from datasets import Array2D, Features, Sequence, Value

    return Features({
        "img_id": Value("string"),
        "img_h": Value("int32"),
        "img_w": Value("int32"),
        "num_boxes": Value("int32"),
        "objects_id": Sequence(Value("int64"), length=num_objects),
        "objects_conf": Sequence(Value("float32"), length=num_objects),
        "attrs_id": Sequence(Value("int64"), length=num_objects),
        "attrs_conf": Sequence(Value("float32"), length=num_objects),
        "boxes": Array2D(shape=(num_objects, 4), dtype="float32"),
        "normalized_boxes": Array2D(shape=(num_objects, 4), dtype="float32"),
        "roi_features": Array2D(shape=(num_objects, feature_dim), dtype="float32"),
    })


def make_record(img_id: str, img_h: int, img_w: int, objects_id: np.ndarray,
                objects_conf: np.ndarray, attrs_id: np.ndarray, attrs_conf: np.ndarray,
                boxes: np.ndarray, features: np.ndarray, num_objects: int) -> dict[str, Any]:
    """One row from the real regions of an image (n <= num_objects of each), padded.

    boxes are x1y1x2y2 in the image's own pixels; normalized boxes are derived from them.
    """
    n = len(objects_id)
    if n > num_objects:
        raise ValueError(f"Image {img_id} has {n} regions but rows hold {num_objects}.")
    boxes = np.asarray(boxes, dtype=np.float32).reshape(n, 4)
    features = np.asarray(features, dtype=np.float32)
    if features.ndim != 2 or features.shape[0] != n:
        raise ValueError(f"Image {img_id}: features {features.shape} do not match {n} boxes.")

    def pad(values: np.ndarray, dtype: type, fill: float, shape: tuple[int, ...] = ()):
        out = np.full((num_objects, *shape), fill, dtype=dtype)
        out[:n] = np.asarray(values, dtype=dtype).reshape(n, *shape)
        return out

    return {
        "img_id": str(img_id), "img_h": int(img_h), "img_w": int(img_w), "num_boxes": n,
        "objects_id": pad(objects_id, np.int64, -1),
        "objects_conf": pad(objects_conf, np.float32, 0.0),
        "attrs_id": pad(attrs_id, np.int64, -1),
        "attrs_conf": pad(attrs_conf, np.float32, 0.0),
        "boxes": pad(boxes, np.float32, 0.0, (4,)),
        "normalized_boxes": pad(normalize_boxes(boxes, img_h, img_w), np.float32, 0.0, (4,)),
        "roi_features": pad(features, np.float32, 0.0, (features.shape[1],)),
    }


def write_region_dataset(records: Iterable[dict[str, Any]] | Callable[[], Iterator[dict]],
                         out_dir: str | os.PathLike, num_objects: int, feature_dim: int,
                         info: dict[str, Any] | Callable[[], dict[str, Any]],
                         description: str = "") -> Path:
    """Write rows to an Arrow dataset folder at `out_dir`, atomically (all or nothing).

    `records` may be a generator function, so rows are produced while they are written and
    never all held in memory. `info` (or what it returns, called once all rows are written)
    goes to region_features.json.
    """
    import datasets
    from datasets.exceptions import DatasetGenerationError

    out_dir = Path(out_dir)
    schema = region_features_schema(num_objects, feature_dim)
    make_rows = records if callable(records) else (lambda: iter(records))
    bars_were_on = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()  # the caller shows its own progress
    try:
        with atomic_dir(out_dir) as tmp, tempfile.TemporaryDirectory(
                prefix=f".{out_dir.name}.cache.", dir=out_dir.parent) as cache:
            try:
                dataset = datasets.Dataset.from_generator(
                    _RowSource(make_rows), features=schema, cache_dir=cache,
                    keep_in_memory=False,
                    fingerprint=f"region-features-{os.getpid()}-{time.time_ns()}")
            except DatasetGenerationError as exc:  # surface the producer's own error
                raise (exc.__cause__ or exc) from None
            if len(dataset) == 0:
                raise ValueError(f"No rows to write to {out_dir}.")
            dataset.info.description = description
            dataset.save_to_disk(str(tmp))
            full_info = {**(info() if callable(info) else info), "num_images": len(dataset),
                         "num_objects": num_objects, "feature_dim": feature_dim}
            (tmp / INFO_FILE).write_text(json.dumps(full_info, indent=2, sort_keys=True))
            del dataset
    finally:
        if bars_were_on:
            datasets.enable_progress_bars()
    return out_dir


class _RowSource:
    """A generator callable that `Dataset.from_generator` can run (it calls it with no args)."""

    def __init__(self, make_rows: Callable[[], Iterator[dict]]) -> None:
        self.make_rows = make_rows

    def __call__(self) -> Iterator[dict]:
        yield from self.make_rows()


def read_region_dataset(path: str | os.PathLike):
    """Open a region-feature dataset folder (memory-mapped)."""
    from datasets import load_from_disk

    path = Path(path)
    if not (path / "dataset_info.json").is_file():
        raise MissingDataError(f"No region-feature dataset at {path}: expected the folder "
                               "written by extract_region_features or import_tsv.")
    dataset = load_from_disk(str(path))
    missing = [c for c in COLUMNS if c not in dataset.column_names]
    if missing:
        raise DataError(f"{path} is not a region-feature dataset: columns {missing} missing.")
    return dataset


def read_extraction_info(path: str | os.PathLike) -> dict[str, Any]:
    """The provenance recorded beside a region-feature dataset (region_features.json)."""
    info_path = Path(path) / INFO_FILE
    if not info_path.is_file():
        raise MissingDataError(f"{info_path} not found: {path} was not written by geovision.")
    return json.loads(info_path.read_text())


def _b64(array: np.ndarray, dtype: type) -> str:
    return base64.b64encode(np.ascontiguousarray(array, dtype=dtype).tobytes()).decode("ascii")


def _unb64(text: str, dtype: type) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype=dtype)


def export_tsv(dataset_path: str | os.PathLike, tsv_path: str | os.PathLike) -> Path:
    """Write the classic LXMERT TSV: no header, tab-separated, arrays as base64 bytes of
    only the real boxes (ids int64, the rest float32)."""
    dataset = read_region_dataset(dataset_path).with_format("numpy")
    tsv_path = Path(tsv_path)
    with atomic_file(tsv_path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f, delimiter="\t", lineterminator="\n")
        for row in dataset:
            n = int(row["num_boxes"])
            writer.writerow([
                str(row["img_id"]), int(row["img_h"]), int(row["img_w"]),
                _b64(row["objects_id"][:n], np.int64), _b64(row["objects_conf"][:n], np.float32),
                _b64(row["attrs_id"][:n], np.int64), _b64(row["attrs_conf"][:n], np.float32),
                n, _b64(row["boxes"][:n], np.float32), _b64(row["roi_features"][:n], np.float32),
            ])
    return tsv_path


def _read_tsv(tsv_path: Path) -> Iterator[dict[str, Any]]:
    csv.field_size_limit(sys.maxsize)
    with open(tsv_path, newline="") as f:
        for line_no, fields in enumerate(csv.reader(f, delimiter="\t"), start=1):
            if len(fields) != len(TSV_FIELDS):
                raise DataError(f"{tsv_path}:{line_no} has {len(fields)} columns; the LXMERT "
                                f"TSV has {len(TSV_FIELDS)}: {', '.join(TSV_FIELDS)}.")
            row: dict[str, Any] = dict(zip(TSV_FIELDS, fields, strict=True))
            for key in ("img_h", "img_w", "num_boxes"):
                row[key] = int(row[key])
            for key, dtype in TSV_DTYPES.items():
                row[key] = _unb64(row[key], dtype)
            n = row["num_boxes"]
            if any(len(row[k]) != n for k in PER_BOX) or len(row["boxes"]) != 4 * n:
                raise DataError(f"{tsv_path}:{line_no} ({row['img_id']}): array lengths do "
                                f"not match num_boxes={n}.")
            yield row


def import_tsv(tsv_path: str | os.PathLike, out_dir: str | os.PathLike,
               num_objects: int | None = None) -> Path:
    """Read a classic LXMERT TSV into a region-feature dataset at `out_dir`.

    Rows are padded to `num_objects` (default: the largest num_boxes in the file).
    """
    tsv_path = Path(tsv_path)
    if not tsv_path.is_file():
        raise MissingDataError(f"TSV file not found: {tsv_path}.")
    max_boxes, feature_dim = 0, None
    for row in _read_tsv(tsv_path):
        n = row["num_boxes"]
        max_boxes = max(max_boxes, n)
        if n:
            dim, rest = divmod(len(row["features"]), n)
            if rest or (feature_dim is not None and dim != feature_dim):
                raise DataError(f"{tsv_path}: image {row['img_id']} has features of a "
                                f"different width than the other rows.")
            feature_dim = dim
    if feature_dim is None:
        raise DataError(f"{tsv_path} holds no boxes at all, so the feature width is unknown.")
    num_objects = num_objects or max_boxes
    if num_objects < max_boxes:
        raise ConfigError(f"num_objects={num_objects} is below the {max_boxes} boxes some rows "
                          f"of {tsv_path} hold; pass at least {max_boxes}.")

    def rows() -> Iterator[dict[str, Any]]:
        for row in _read_tsv(tsv_path):
            n = row["num_boxes"]
            yield make_record(row["img_id"], row["img_h"], row["img_w"], row["objects_id"],
                              row["objects_conf"], row["attrs_id"], row["attrs_conf"],
                              row["boxes"].reshape(n, 4),
                              row["features"].reshape(n, feature_dim), num_objects)

    info = {"source": "tsv", "tsv": str(tsv_path), "random_weights": None}
    return write_region_dataset(rows, out_dir, num_objects, feature_dim, info,
                                description=f"Region features imported from {tsv_path.name}.")


def check_region_dataset(path: str | os.PathLike, batch_size: int = 256) -> list[str]:
    """Problems with a region-feature dataset's shapes and ranges; an empty list means it
    holds what consumers expect (the Dagster asset check runs this).

    Checked: the recorded counts and widths, num_boxes within the slots, boxes inside their
    image and not inverted, normalised boxes in [0, 1] and equal to boxes / size, finite
    features, and padding slots that are empty.
    """
    dataset = read_region_dataset(path)
    info = read_extraction_info(path)
    num_objects, feature_dim = dataset.features["roi_features"].shape
    problems = []
    if len(dataset) != info.get("num_images"):
        problems.append(f"{len(dataset)} rows but region_features.json records "
                        f"{info.get('num_images')} images.")
    if (num_objects, feature_dim) != (info.get("num_objects"), info.get("feature_dim")):
        problems.append(f"features are ({num_objects}, {feature_dim}) per image but "
                        f"region_features.json records ({info.get('num_objects')}, "
                        f"{info.get('feature_dim')}).")
    for batch in dataset.with_format("numpy").iter(batch_size=batch_size):
        ids = [str(i) for i in batch["img_id"]]
        n = batch["num_boxes"]
        slots = np.arange(num_objects)[None, :] < n[:, None]  # (B, N) real regions
        size = np.stack([batch["img_w"], batch["img_h"]] * 2, axis=1)[:, None, :]
        boxes, norm = batch["boxes"], batch["normalized_boxes"]
        feats = batch["roi_features"]
        checks = {
            "num_boxes outside [0, num_objects]": (n < 0) | (n > num_objects),
            "boxes outside the image": ((boxes < -1e-3) | (boxes > size + 1e-3)).any(2).any(1),
            "inverted boxes": ((boxes[..., 2] < boxes[..., 0]) | (boxes[..., 3] < boxes[..., 1])
                               ).any(1),
            "normalized boxes outside [0, 1]": ((norm < 0) | (norm > 1)).any(2).any(1),
            "normalized boxes differ from boxes / image size": (
                np.abs(norm - np.clip(boxes / size, 0, 1)) > 1e-4).any(2).any(1),
            "non-finite features": ~np.isfinite(feats).all(2).all(1),
            "padding slots are not empty": (
                (feats.any(2) & ~slots) | ((batch["objects_id"] != -1) & ~slots)).any(1),
        }
        for what, bad in checks.items():
            if bad.any():
                examples = [ids[i] for i in np.flatnonzero(bad)[:5]]
                problems.append(f"{what}: {int(bad.sum())} images, e.g. {examples}.")
    return problems
