"""The chip grid of one scene cut into cells: which chips cover each cell, in which order they
arrive, and the array views that copy or blend a whole row of overlaps in one NumPy call."""

from __future__ import annotations

import bisect
from typing import Any

import numpy as np

BLOCK_ROWS = 256  # rows per output band, and the output GeoTIFF's tile size


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


def column_view(array: np.ndarray, rows: slice, columns: Columns) -> np.ndarray:
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


class Cells:
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
