"""`stitch`: one scene's chip predictions in, one georeferenced file out."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from geovision.data.stitching.assembler import Assembler
from geovision.data.stitching.grid import cosine_weights, grid_overlap
from geovision.data.stitching.sinks import BandWriter, GeoTiffSink, NpySink
from geovision.data.tiling import WINDOW_COLUMNS, TilingError, open_raster
from geovision.io.atomic import atomic_file

BLENDS = ("mean", "cosine")
GEOTIFF_SUFFIXES = (".tif", ".tiff")


@dataclass(frozen=True)
class StitchResult:
    """What `stitch` wrote. `peak_rows` is the most scene rows held in memory at once."""

    path: Path
    shape: tuple[int, int, int]
    dtype: str
    num_chips: int
    peak_rows: int
    crs: str | None
    transform: tuple[float, ...]


def _scene_chips(chips: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in ("image_path", *WINDOW_COLUMNS) if c not in chips]
    if missing:
        raise TilingError(f"chip index lacks columns {missing}; build it with chip_index.")
    if chips.empty:
        raise TilingError("the chip index is empty: there is nothing to stitch.")
    sources = chips["image_path"].unique()
    if len(sources) != 1:
        raise TilingError(f"stitch writes one scene but the chips come from {len(sources)} "
                          "sources; pass the chips of one, e.g. chips[chips.df_idx == k].")
    if chips.index.has_duplicates:
        raise TilingError("chip index has duplicate index values; chip_idx must be unique.")
    return chips


def _cosine_table(chips: pd.DataFrame) -> dict[tuple[int, int], np.ndarray]:
    """Weights per chip size; the ramps span the grid's overlap along each axis."""
    row_ramp = grid_overlap(chips["row_off"].to_numpy(), int(chips["height"].max()))
    col_ramp = grid_overlap(chips["col_off"].to_numpy(), int(chips["width"].max()))
    sizes = chips[["height", "width"]].drop_duplicates().itertuples(index=False)
    return {(int(h), int(w)): np.outer(cosine_weights(int(h), row_ramp),
                                       cosine_weights(int(w), col_ramp))
            for h, w in sizes}


def stitch(
    predictions: Iterable[tuple[int, Any]],
    chips: pd.DataFrame,
    out_path: str | os.PathLike,
    like: str | os.PathLike | None = None,
    blend: str = "mean",
    dtype: str | np.dtype | None = None,
    fill_value: float | None = None,
    compress: str | None = "source",
    progress: bool = True,
) -> StitchResult:
    """Write the scene assembled from `predictions`, (chip_idx, (C, h, w) array) pairs.

    `chips` are the chip index rows of one scene (chip_idx = their index labels); every one
    must be predicted once, in any order (index order keeps memory smallest). `like` gives
    the CRS, transform and size (default: the chips' image_path). `out_path` ending in .tif /
    .tiff is written as a tiled GeoTIFF; ending in .npy as a memory-mappable array plus
    `<stem>.geo.json` with the CRS and transform. `dtype` defaults to the predictions' dtype;
    integer outputs are rounded (halves up). Pixels no chip covers get `fill_value` (default: the
    source's nodata value, else 0). `compress`: "source" copies the source's compression,
    None writes uncompressed, or a GDAL name ("deflate", "zstd", ...). Written atomically.
    """
    if blend not in BLENDS:
        raise TilingError(f"blend={blend!r}; use one of {BLENDS}.")
    chips = _scene_chips(chips)
    out_path = Path(out_path)
    suffix = out_path.suffix.lower()
    if suffix not in (*GEOTIFF_SUFFIXES, ".npy"):
        raise TilingError(f"out_path {out_path} must end in .tif, .tiff or .npy.")
    like = Path(like if like is not None else chips["image_path"].iloc[0])
    windows = chips[list(WINDOW_COLUMNS[:4])].to_numpy(dtype=np.int64)
    with open_raster(like) as src:
        scene = (int(chips["scene_height"].iloc[0]), int(chips["scene_width"].iloc[0]))
        if (src.height, src.width) != scene:
            raise TilingError(f"{like} is {src.height} x {src.width} but the chips were cut "
                              f"from a {scene[0]} x {scene[1]} scene; pass the scene they came "
                              "from as `like`.")
        items = iter(predictions)
        first = next(items, None)
        if first is None:
            raise TilingError("no predictions were given to stitch.")
        first_values = np.asarray(first[1])
        if first_values.ndim != 3:
            raise TilingError(f"prediction of chip {first[0]} has shape {first_values.shape}; "
                              "give (C, h, w) arrays (add a band axis to single-band output).")
        count = first_values.shape[0]
        out_dtype = np.dtype(dtype) if dtype is not None else first_values.dtype
        fill = fill_value if fill_value is not None else (src.nodata or 0)
        weights = _cosine_table(chips) if blend == "cosine" else None
        assembler = Assembler(chips, windows, count, first_values.dtype, out_dtype, fill,
                               weights)
        with atomic_file(out_path) as tmp:
            if suffix == ".npy":
                sink: Any = NpySink(tmp, (count, *scene), out_dtype)
            else:
                source_compress = src.compression.value.lower() if src.compression else None
                sink = GeoTiffSink(tmp, src, count, out_dtype,
                                    src.nodata if fill_value is None else fill_value,
                                    source_compress if compress == "source" else compress)
            writer = BandWriter(sink, assembler)
            try:
                with tqdm(total=len(chips), desc=f"stitch {out_path.name}", unit="chip",
                          leave=True, disable=not progress) as bar:
                    _feed(_chain(first, items), chips, windows, first_values, assembler, writer,
                          bar)
            finally:
                writer.close()
                sink.close()
        crs, transform = src.crs, src.transform
    if suffix == ".npy":
        geo = {"crs": crs.to_wkt() if crs else None, "transform": list(transform)[:6],
               "height": scene[0], "width": scene[1]}
        with atomic_file(out_path.with_suffix(".geo.json")) as tmp:
            tmp.write_text(json.dumps(geo, indent=2))
    return StitchResult(path=out_path, shape=(count, *scene), dtype=out_dtype.name,
                        num_chips=len(chips), peak_rows=assembler.peak_rows,
                        crs=crs.to_wkt() if crs else None, transform=tuple(transform)[:6])


def _feed(predictions: Iterator[tuple[int, Any]], chips: pd.DataFrame, windows: np.ndarray,
          first: np.ndarray, assembler: Assembler, writer: BandWriter, bar: tqdm) -> None:
    """Check each prediction against its chip and the first prediction, assemble it, and
    hand complete bands to the writer; every chip must come exactly once."""
    positions = {int(label): k for k, label in enumerate(chips.index)}
    seen = np.zeros(len(chips), dtype=bool)
    for chip_idx, values in predictions:
        position = positions.get(int(chip_idx))
        if position is None:
            raise TilingError(f"chip_idx {chip_idx} is not in the chip index given to stitch; "
                              "pass the index the chips were read from.")
        if seen[position]:
            raise TilingError(f"chip_idx {chip_idx} was predicted twice; give each chip once "
                              "(no sampler that repeats chips).")
        seen[position] = True
        row_off, col_off, height, width = (int(v) for v in windows[position])
        values = np.ascontiguousarray(values)
        expected = (first.shape[0], height, width)
        if values.shape != expected or values.dtype != first.dtype:
            raise TilingError(f"prediction of chip {chip_idx} is {values.dtype} {values.shape}; "
                              f"expected {first.dtype} {expected} (the first prediction's dtype "
                              "and bands, the chip's size).")
        assembler.add(position, row_off, col_off, values)
        for row, band, buffers in assembler.complete():
            writer.submit(row, band, buffers)
        bar.update()
    writer.wait()
    if not seen.all():
        missing = chips.index[~seen]
        raise TilingError(f"{len(missing)} of {len(chips)} chips were not predicted (chip_idx "
                          f"{list(missing[:5])}...); predict every chip of the index given to "
                          "stitch, or pass only those predicted.")


def _chain(first: tuple[int, Any], rest: Iterator[tuple[int, Any]]
           ) -> Iterator[tuple[int, Any]]:
    """The first prediction (taken early to learn the bands and dtype), then the rest."""
    yield first
    yield from rest
