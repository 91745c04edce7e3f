"""Putting chip predictions back together into one georeferenced scene, in bounded memory.

`stitch` takes (chip_idx, array) pairs for the chips of one scene (see
`geovision.data.tiling.chip_index`) and writes the scene as a tiled GeoTIFF with the source's
CRS and transform, or as a .npy memory map with a .geo.json beside it. Where chips overlap,
their values are blended: "mean" weighs every chip equally (identical overlapping values give
back exactly those values), "cosine" fades each chip out across the overlap so seams vanish.

How: the chip edges and the output's bands of BLOCK_ROWS rows cut the scene into cells, each
covered by a number of chips known from the chip index before any prediction arrives. A
pixel covered by one chip is copied straight into the output band. In a shared cell the
earlier chips leave their values (the first in the output itself where it holds them
exactly, the others summed) and the last to arrive blends them all while they are still in
the CPU's cache. A band is written, on a background thread, and its buffers reused as soon
as no chip still to come touches it, so with chips in index order (row by row, as a
DataLoader without shuffling gives them) about two chip heights of rows are held in memory.
Integer outputs are rounded to the nearest value, halves up.
"""

from __future__ import annotations

import bisect
import json
import os
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from geovision.data.tiling import WINDOW_COLUMNS, TilingError, open_raster
from geovision.io.atomic import atomic_file

BLENDS = ("mean", "cosine")
BLOCK_ROWS = 256  # rows per output band, and the output GeoTIFF's tile size
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


def cosine_weights(length: int, ramp: int) -> np.ndarray:
    """1-D chip weights: a raised-cosine rise over the first `ramp` pixels, 1 in the middle,
    the mirrored fall at the end. Two neighbours overlapping by `ramp` sum to 1, and every
    weight is positive, so a pixel covered by one chip keeps that chip's value."""
    t = np.arange(length, dtype=np.float64)
    edge = np.minimum(t, length - 1 - t)
    if ramp <= 0:
        return np.ones(length, dtype=np.float64)
    return np.where(edge < ramp, 0.5 - 0.5 * np.cos(np.pi * (edge + 0.5) / ramp), 1.0)


def grid_overlap(offsets: np.ndarray, size: int) -> int:
    """The overlap of a chip grid along one axis: chip size minus the smallest step."""
    steps = np.diff(np.unique(offsets))
    return max(0, size - int(steps.min())) if len(steps) else 0


def accumulator_dtype(dtype: np.dtype, max_cover: int) -> np.dtype:
    """The narrowest type that sums `max_cover` chips of `dtype` exactly: 16-bit integers for
    8-bit data (the fastest to add), float32 for 16-bit data, else float64 (float32
    predictions included, so that equal values average back exactly)."""
    dtype = np.dtype(dtype)
    if np.issubdtype(dtype, np.integer) and dtype.itemsize == 1 and max_cover <= 128:
        return np.dtype(np.int16)
    if np.issubdtype(dtype, np.integer) and dtype.itemsize <= 2 and max_cover <= 256:
        return np.dtype(np.float32)
    return np.dtype(np.float64)


def _runs(values: list[int]) -> list[tuple[int, int, int]]:
    """(value, start, end) for each run of equal values (short lists: plain Python)."""
    runs = []
    start = 0
    for i in range(1, len(values) + 1):
        if i == len(values) or values[i] != values[start]:
            runs.append((values[start], start, i))
            start = i
    return runs


def _row_groups(keys: list[Any]) -> list[tuple[int, int, Any]]:
    """Merge consecutive cell rows with equal keys: (first row, end row, key)."""
    groups: list[tuple[int, int, Any]] = []
    for i, key in enumerate(keys):
        if groups and groups[-1][2] == key:
            groups[-1] = (groups[-1][0], i + 1, key)
        else:
            groups.append((i, i + 1, key))
    return groups


# Columns (start, width, step, n): n runs of `width` columns, `step` apart. The overlaps of a
# regular grid line up like this, so one NumPy call handles a whole row of them.
Columns = tuple[int, int, int, int]


def _progressions(spans: list[tuple[int, int]]) -> list[Columns]:
    """Group (start, end) column spans, left to right, into evenly spaced equal widths."""
    groups: list[Columns] = []
    for start, end in spans:
        width = end - start
        if groups:
            first, size, step, n = groups[-1]
            if size == width and (n == 1 or start == first + n * step):
                groups[-1] = (first, size, start - first if n == 1 else step, n + 1)
                continue
        groups.append((start, width, 0, 1))
    return groups


def _view(array: np.ndarray, rows: slice, columns: Columns) -> np.ndarray:
    """array[..., rows, cols] of a C-contiguous array for the columns: (..., rows, width), or
    for n > 1 a (..., rows, n, width) view that writes through to `array` (built directly:
    as_strided costs several times more, and this runs for every rectangle)."""
    start, width, step, n = columns
    if n == 1:
        return array[..., rows, start:start + width]
    *outer, row_stride, col_stride = array.strides
    shape = (*array.shape[:-2], rows.stop - rows.start, n, width)
    offset = rows.start * row_stride + start * col_stride
    return np.ndarray(shape, array.dtype, array, offset,
                      (*outer, row_stride, step * col_stride, col_stride))


# What a chip does with each of its cells. The chips covering a cell are known from the
# chip index, so the last of them to arrive finishes the cell while its values are still in
# the CPU's cache; the earlier ones leave their values where the last will find them.
OUT = 0  # copy into the output: the only chip there, or the first when the output can park it
SET = 1  # the first to reach the sums: set them
ADD = 2  # add to the sums
LAST = 3  # the last: blend its values with what the others left, into the output


class _Cells:
    """The scene cut by every chip edge and band boundary into cells with a known cover count.

    `copy_first` (mean blending into an output dtype that holds the predictions exactly):
    the first chip of a shared cell parks its values in the output, which saves the sums for
    the many cells two chips share.
    """

    def __init__(self, windows: np.ndarray, height: int, width: int, copy_first: bool) -> None:
        row0, col0 = windows[:, 0], windows[:, 1]
        row1 = np.minimum(row0 + windows[:, 2], height)
        col1 = np.minimum(col0 + windows[:, 3], width)
        rows = np.unique(np.concatenate([[0, height], row0, row1,
                                         np.arange(0, height, BLOCK_ROWS)]))
        cols = np.unique(np.concatenate([[0, width], col0, col1]))
        i0, i1 = np.searchsorted(rows, row0), np.searchsorted(rows, row1)
        j0, j1 = np.searchsorted(cols, col0), np.searchsorted(cols, col1)
        diff = np.zeros((len(rows), len(cols)), dtype=np.int64)
        for i, j, sign in ((i0, j0, 1), (i0, j1, -1), (i1, j0, -1), (i1, j1, 1)):
            np.add.at(diff, (i, j), sign)
        count = diff.cumsum(0).cumsum(1)[:-1, :-1]
        self.max_cover = int(count.max())
        self.copy_first = copy_first
        # plain lists: the per-chip work below touches a handful of cells each time
        self._rows, self._cols = rows.tolist(), cols.tolist()
        self._cell_band = (rows[:-1] // BLOCK_ROWS).tolist()
        self._bounds = np.stack([i0, i1, j0, j1], axis=1).tolist()
        self._count = count.tolist()
        self._arrived = np.zeros_like(count).tolist()

    def arrive(self, k: int, row_off: int, col_off: int
               ) -> list[tuple[int, int, int, slice, slice, Columns, Columns]]:
        """(band, kind, cover count, band rows, chip rows, band columns, chip columns) for
        each rectangle group of chip `k`, which is counted as arrived."""
        i0, i1, j0, j1 = self._bounds[k]
        first_set = 1 if self.copy_first else 0
        keys = []
        for i in range(i0, i1):
            counts, arrived = self._count[i], self._arrived[i]
            kinds = []
            for j in range(j0, j1):
                rank, count = arrived[j], counts[j]
                arrived[j] = rank + 1
                if count == 1 or rank < first_set:
                    kinds.append((OUT, 1))
                elif rank == count - 1:
                    kinds.append((LAST, count))
                else:
                    kinds.append((SET if rank == first_set else ADD, 1))
            keys.append((self._cell_band[i], tuple(_runs(kinds))))
        parts = []
        for first, end, (band, runs) in _row_groups(keys):
            r0, r1 = self._rows[i0 + first], self._rows[i0 + end]
            top = band * BLOCK_ROWS
            for kind in sorted({v for v, _, _ in runs}):
                spans = [(self._cols[j0 + s], self._cols[j0 + e]) for v, s, e in runs
                         if v == kind]
                for start, width, step, n in _progressions(spans):
                    parts.append((band, *kind, slice(r0 - top, r1 - top),
                                  slice(r0 - row_off, r1 - row_off), (start, width, step, n),
                                  (start - col_off, width, step, n)))
        return parts

    def uncovered(self, band: int, height: int) -> list[tuple[slice, Columns]]:
        """(band rows, columns) of the rectangles of `band` that no chip covers."""
        top = band * BLOCK_ROWS
        first = bisect.bisect_left(self._rows, top)
        end = bisect.bisect_left(self._rows, min(top + BLOCK_ROWS, height))
        keys = [tuple(_runs([c == 0 for c in self._count[i]])) for i in range(first, end)]
        parts = []
        for start, stop, runs in _row_groups(keys):
            rows = slice(self._rows[first + start] - top, self._rows[first + stop] - top)
            spans = [(self._cols[s], self._cols[e]) for empty, s, e in runs if empty]
            parts.extend((rows, columns) for columns in _progressions(spans))
        return parts


class _Assembler:
    """Output bands being assembled: copies, sums, blends and the order of writing."""

    def __init__(self, chips: pd.DataFrame, windows: np.ndarray, count: int,
                 in_dtype: np.dtype, out_dtype: np.dtype, fill: float,
                 weights: dict[tuple[int, int], np.ndarray] | None) -> None:
        self.height = int(chips["scene_height"].iloc[0])
        self.width = int(chips["scene_width"].iloc[0])
        self.count = count
        self.out_dtype = out_dtype
        self.fill = fill
        self.weights = weights
        copy_first = weights is None and np.can_cast(in_dtype, out_dtype, "safe")
        self.cells = _Cells(windows, self.height, self.width, copy_first)
        self.acc_dtype = accumulator_dtype(in_dtype, self.cells.max_cover)
        if weights is not None:  # weighted sums are fractional
            self.acc_dtype = np.promote_types(self.acc_dtype, np.float32)
        self.integer_out = np.issubdtype(out_dtype, np.integer)
        # integer sums for integer output stay integers: (sum + count // 2) // count
        self.integer_sums = self.integer_out and np.issubdtype(self.acc_dtype, np.integer)
        scratch_dtype = self.acc_dtype if self.integer_sums else \
            np.promote_types(self.acc_dtype, np.float32)
        largest = int((chips["height"] * chips["width"]).max())
        self.scratch = np.empty(count * largest, dtype=scratch_dtype)
        self.wscratch = np.empty(largest, dtype=scratch_dtype) if weights is not None else None
        self.round = self.integer_out and not np.issubdtype(in_dtype, np.integer)
        self.clip = self.integer_out and not np.can_cast(in_dtype, out_dtype)
        self.bands: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray | None]] = {}
        self.spare: list[tuple[np.ndarray, np.ndarray, np.ndarray | None]] = []
        self.allocated = 0
        # chips still to come, per start row: rows above the first such row are final
        self.starts, pending = np.unique(windows[:, 0], return_counts=True)
        self.pending = pending.tolist()
        self.start_index = {int(s): i for i, s in enumerate(self.starts)}
        self.first = 0
        self.flushed = 0  # bands [0, flushed) are finished
        self.last_band = -(-self.height // BLOCK_ROWS)

    @property
    def peak_rows(self) -> int:
        """Rows of the band buffers allocated: the most held at any time."""
        return self.allocated * BLOCK_ROWS

    def add(self, k: int, row_off: int, col_off: int, values: np.ndarray) -> None:
        weight = None if self.weights is None else self.weights[values.shape[1:]]
        for band, kind, cover, rows, chip_rows, columns, chip_columns in \
                self.cells.arrive(k, row_off, col_off):
            out, acc, wsum = self.bands.get(band) or self._band(band)
            part = _view(values, chip_rows, chip_columns)
            target = _view(out, rows, columns)
            if kind == OUT:
                self._store(target, part)
                continue
            sums = _view(acc, rows, columns)
            if weight is None:
                if kind == SET:
                    sums[...] = part
                elif kind == ADD:
                    np.add(sums, part, out=sums)
                else:
                    self._blend_mean(target, sums, part, cover)
                continue
            w = _view(weight, chip_rows, chip_columns)
            weights = _view(wsum, rows, columns)
            if kind == SET:
                np.multiply(part, w, out=sums, casting="same_kind")
                weights[...] = w
            elif kind == ADD:
                sums += part * w
                weights += w
            else:
                self._blend_weighted(target, sums, weights, part, w)
        self.pending[self.start_index[row_off]] -= 1
        while self.first < len(self.pending) and self.pending[self.first] == 0:
            self.first += 1

    def _blend_mean(self, target: np.ndarray, sums: np.ndarray, part: np.ndarray,
                    cover: int) -> None:
        """The mean of the `cover` chips of these cells: this chip's values, the first chip's
        parked in the output (copy_first) and the sums of the others (if any)."""
        total = self.scratch[:part.size].reshape(part.shape)
        if self.cells.copy_first:  # dtype: uint8 + uint8 would otherwise add in uint8
            np.add(target, part, out=total, dtype=total.dtype)
            if cover > 2:
                np.add(total, sums, out=total)
        else:
            np.add(sums, part, out=total, dtype=total.dtype)
        if self.integer_sums:  # halves round up
            np.add(total, cover // 2, out=total)
            np.floor_divide(total, cover, out=total)
        else:
            np.divide(total, cover, out=total)
        self._finish(target, total)

    def _blend_weighted(self, target: np.ndarray, sums: np.ndarray, weights: np.ndarray,
                        part: np.ndarray, w: np.ndarray) -> None:
        total = self.scratch[:part.size].reshape(part.shape)
        np.multiply(part, w, out=total)
        np.add(total, sums, out=total)
        weight = self.wscratch[:w.size].reshape(w.shape)
        np.add(weights, w, out=weight)
        np.divide(total, weight, out=total)
        self._finish(target, total)

    def _finish(self, target: np.ndarray, blended: np.ndarray) -> None:
        if self.integer_out and not self.integer_sums:  # halves round up
            np.add(blended, 0.5, out=blended)
            np.floor(blended, out=blended)
        self._store(target, blended)

    def _store(self, out: np.ndarray, values: np.ndarray) -> None:
        """Values into the output dtype: rounded and clipped where the predictions are floats
        or wider than the output."""
        if self.round:
            values = np.floor(values + 0.5)
        if self.clip:
            info = np.iinfo(self.out_dtype)
            values = np.clip(values, info.min, info.max)
        out[...] = values

    def _band(self, b: int, keep: bool = True
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Buffers for band `b` (kept in `bands` while chips still arrive for it)."""
        if self.spare:  # reuse a written band's buffers: fresh pages fault in slowly
            band = self.spare.pop()
        else:
            shape = (self.count, BLOCK_ROWS, self.width)
            band = (np.empty(shape, dtype=self.out_dtype), np.empty(shape, dtype=self.acc_dtype),
                    None if self.weights is None else np.empty(shape[1:], dtype=self.acc_dtype))
            self.allocated += 1
        if keep:
            self.bands[b] = band
        return band

    def complete(self) -> Iterator[tuple[int, np.ndarray, Any]]:
        """(first row, values, buffers) of each band no pending chip touches any more, top to
        bottom, its uncovered cells filled; `release` the buffers once the values are
        written."""
        if self.first < len(self.starts):
            end = int(self.starts[self.first]) // BLOCK_ROWS
        else:
            end = self.last_band
        while self.flushed < end:
            b = self.flushed
            buffers = self.bands.pop(b, None) or self._band(b, keep=False)
            self.flushed += 1
            out = buffers[0]
            for rows, columns in self.cells.uncovered(b, self.height):
                _view(out, rows, columns)[...] = self.fill
            yield b * BLOCK_ROWS, out[:, :min(BLOCK_ROWS, self.height - b * BLOCK_ROWS)], buffers

    def release(self, buffers: Any) -> None:
        self.spare.append(buffers)


def _fresh(path: Path) -> None:
    """Remove the empty temporary file the atomic write made, so it is created anew: on
    ext4, a file truncated on open is flushed to disk when closed (auto_da_alloc), which
    costs a third of the stitching time of a 5000 px scene."""
    path.unlink(missing_ok=True)


class _GeoTiffSink:
    def __init__(self, path: Path, like: Any, count: int, dtype: np.dtype,
                 nodata: float | None, compress: str | None) -> None:
        import rasterio

        profile = {
            "driver": "GTiff", "height": like.height, "width": like.width, "count": count,
            "dtype": dtype.name, "crs": like.crs, "transform": like.transform,
            "tiled": True, "blockxsize": BLOCK_ROWS, "blockysize": BLOCK_ROWS,
            # band-sequential tiles take the (C, rows, W) bands as they are, without
            # interleaving pixels: half the cost of writing
            "interleave": "band",
        }
        if nodata is not None:
            profile["nodata"] = nodata
        if compress:
            profile["compress"] = compress
        _fresh(path)
        self.dst = rasterio.open(path, "w", **profile)

    def write(self, row: int, values: np.ndarray) -> None:
        from rasterio.windows import Window

        self.dst.write(values, window=Window(0, row, values.shape[2], values.shape[1]))

    def close(self) -> None:
        self.dst.close()


class _NpySink:
    def __init__(self, path: Path, shape: tuple[int, int, int], dtype: np.dtype) -> None:
        _fresh(path)
        self.array = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)

    def write(self, row: int, values: np.ndarray) -> None:
        self.array[:, row:row + values.shape[1]] = values

    def close(self) -> None:
        self.array.flush()
        del self.array


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
        assembler = _Assembler(chips, windows, count, first_values.dtype, out_dtype, fill,
                               weights)
        with atomic_file(out_path) as tmp:
            if suffix == ".npy":
                sink: Any = _NpySink(tmp, (count, *scene), out_dtype)
            else:
                source_compress = src.compression.value.lower() if src.compression else None
                sink = _GeoTiffSink(tmp, src, count, out_dtype,
                                    src.nodata if fill_value is None else fill_value,
                                    source_compress if compress == "source" else compress)
            writer = _Writer(sink, assembler)
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
          first: np.ndarray, assembler: _Assembler, writer: _Writer, bar: tqdm) -> None:
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


class _Writer:
    """Writes finished bands on one background thread while the main thread assembles the
    next (GDAL releases the GIL while it writes); one band in flight at a time, so memory
    stays bounded, and a failed write is raised on the next call."""

    def __init__(self, sink: Any, assembler: _Assembler) -> None:
        self.sink = sink
        self.assembler = assembler
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stitch-writer")
        self.pending: tuple[Future, Any] | None = None

    def submit(self, row: int, values: np.ndarray, buffers: Any) -> None:
        self.wait()
        self.pending = (self.pool.submit(self.sink.write, row, values), buffers)

    def wait(self) -> None:
        if self.pending is not None:
            future, buffers = self.pending
            self.pending = None
            future.result()
            self.assembler.release(buffers)

    def close(self) -> None:
        self.pool.shutdown(wait=True)
