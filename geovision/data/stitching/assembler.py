"""Output bands being assembled from chip predictions: copies, sums, blends, and when a band
is final and can be written."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd

from geovision.data.stitching.grid import (
    ADD,
    BLOCK_ROWS,
    OUT,
    SET,
    Cells,
    accumulator_dtype,
    column_view,
)


class Assembler:
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
        self.cells = Cells(windows, self.height, self.width, copy_first)
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
            part = column_view(values, chip_rows, chip_columns)
            target = column_view(out, rows, columns)
            if kind == OUT:
                self._store(target, part)
                continue
            sums = column_view(acc, rows, columns)
            if weight is None:
                if kind == SET:
                    sums[...] = part
                elif kind == ADD:
                    np.add(sums, part, out=sums)
                else:
                    self._blend_mean(target, sums, part, cover)
                continue
            w = column_view(weight, chip_rows, chip_columns)
            weights = column_view(wsum, rows, columns)
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
                column_view(out, rows, columns)[...] = self.fill
            yield b * BLOCK_ROWS, out[:, :min(BLOCK_ROWS, self.height - b * BLOCK_ROWS)], buffers

    def release(self, buffers: Any) -> None:
        self.spare.append(buffers)
