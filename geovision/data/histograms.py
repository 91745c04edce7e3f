"""Exact per-band value counts of integer images, compiled.

The histogram is the whole cost of exact integer statistics, so it gets its own loop: numpy's
bincount first widens every pixel to int64, and torch's makes two extra passes for the minimum
and maximum. Imagery has long runs of equal values, and a single counter table makes each
increment wait for the previous one to the same bin; 8-bit bands are counted into eight
interleaved int32 tables instead, added up at the end. The kernels are compiled on first use and
cached on disk (numba), so later processes load them in milliseconds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numba
import numpy as np

LANES = 8  # interleaved tables for 8-bit bands
LANE_BLOCK = 1 << 32  # pixels counted before the int32 tables are added up: 2**29 per lane


@numba.njit(cache=True, nogil=True)
def _fill_lanes(row: np.ndarray, tables: np.ndarray) -> None:  # pragma: no cover - compiled
    n = row.shape[0]
    whole = n - n % LANES
    for i in range(0, whole, LANES):
        for lane in range(LANES):
            tables[lane, row[i + lane]] += 1
    for i in range(whole, n):
        tables[0, row[i]] += 1


@numba.njit(cache=True, nogil=True)
def _counts_8bit(pixels: np.ndarray, out: np.ndarray, block: int
                 ) -> None:  # pragma: no cover - compiled
    bands, n = pixels.shape
    # int32 tables (8 KiB in all) rather than int64: 3x faster on a band of one value. The
    # run goes through its own function: written inline, the loop compiled 35% slower.
    tables = np.zeros((LANES, 256), np.int32)
    out[:] = 0
    for band in range(bands):
        for start in range(0, n, block):  # `block` pixels at most per table fill
            tables[:] = 0
            _fill_lanes(pixels[band, start:start + block], tables)
            for value in range(256):
                total = 0
                for lane in range(LANES):
                    total += tables[lane, value]
                out[band, value] += total


@numba.njit(cache=True, nogil=True)
def _counts_16bit(pixels: np.ndarray, out: np.ndarray) -> None:  # pragma: no cover - compiled
    bands, n = pixels.shape
    for band in range(bands):
        row = pixels[band]
        counts = out[band]
        counts[:] = 0
        for i in range(n):
            counts[row[i]] += 1


def band_counter(dtype: np.dtype) -> Callable[[np.ndarray, np.ndarray], None]:
    """`count(pixels, out)`: band_counts of (bands, pixels) arrays of `dtype` into `out`,
    without band_counts' checks of each call, for loops over many images of one dtype (where
    the checks, on caches cold from decoding, cost a tenth of the count)."""
    dtype = np.dtype(dtype)
    if dtype.kind not in "ui" or dtype.itemsize > 2:
        raise TypeError(f"Value counts need an 8- or 16-bit integer dtype, not {dtype}.")
    if dtype.itemsize == 1:
        def count(pixels: np.ndarray, out: np.ndarray) -> None:
            _counts_8bit(pixels, out, LANE_BLOCK)
    else:
        count = _counts_16bit
    if dtype.kind == "u":
        return count
    unsigned, half = np.dtype(f"u{dtype.itemsize}"), 1 << (8 * dtype.itemsize - 1)

    def count_signed(pixels: np.ndarray, out: np.ndarray) -> None:
        count(pixels.view(unsigned), out)
        out[:] = np.roll(out, half, axis=1)  # two's complement: negative values came last

    return count_signed


def band_counts(pixels: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """How often each value of the dtype occurs in each row of (bands, pixels) `pixels`.

    Returns (bands, 2**bits) int64 counts for 8- and 16-bit integer dtypes, column k counting
    the value `iinfo(dtype).min + k`; written into `out` when given (a C-contiguous int64
    array of that shape).
    """
    pixels = np.ascontiguousarray(pixels)
    if pixels.ndim != 2 or not np.issubdtype(pixels.dtype, np.integer) or (
            pixels.dtype.itemsize > 2):
        raise TypeError("band_counts expects (bands, pixels) of an 8- or 16-bit integer "
                        f"dtype, got {pixels.dtype} of shape {pixels.shape}.")
    shape = (pixels.shape[0], 1 << (8 * pixels.dtype.itemsize))
    if out is None:
        out = np.empty(shape, np.int64)
    elif out.shape != shape or out.dtype != np.int64 or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous int64 array of shape {shape}, got "
                         f"{out.dtype} {out.shape}.")
    band_counter(pixels.dtype)(pixels, out)
    return out


@numba.njit(cache=True, nogil=True)
def _summarise(counts: np.ndarray, lo: int, skip: int
               ) -> tuple[np.ndarray, ...]:  # pragma: no cover - compiled
    rows, num_values = counts.shape
    number, total, total_sq = np.zeros((3, rows), np.int64)
    low, high = np.full(rows, -1, np.int64), np.full(rows, -1, np.int64)
    for r in range(rows):
        if 0 <= skip < num_values:
            counts[r, skip] = 0
        for k in range(num_values):
            n = counts[r, k]
            if n:
                value = k + lo
                number[r] += n
                total[r] += n * value
                total_sq[r] += n * value * value
                if low[r] < 0:
                    low[r] = k
                high[r] = k
    return number, total, total_sq, low, high


class CountSummary(NamedTuple):
    """Exact integer moments of value counts, one entry per row of the counts."""

    number: np.ndarray  # values counted
    total: np.ndarray  # their sum
    total_sq: np.ndarray  # the sum of their squares
    low: np.ndarray  # the column of the smallest value present (-1: none)
    high: np.ndarray  # of the largest


def summarise_counts(counts: np.ndarray, lo: int, skip: int | None = None) -> CountSummary:
    """Number, sum, sum of squares, smallest and largest value of each row of (rows, values)
    `counts`, where column k counts the value lo + k. The column of `skip` (nodata) is
    zeroed first, in place. Sums are int64: exact for 16-bit values up to 2**31 per row."""
    counts = np.asarray(counts)
    if counts.ndim != 2 or counts.dtype != np.int64 or not counts.flags.c_contiguous:
        raise ValueError("summarise_counts expects C-contiguous (rows, values) int64 counts, "
                         f"got {counts.dtype} {counts.shape}.")
    return CountSummary(*_summarise(counts, lo, -1 if skip is None else skip - lo))


def load_kernels() -> None:
    """Compile or load the kernels now, so that processes forked afterwards inherit them
    rather than each paying numba's start-up (about half a second) on its first image."""
    for dtype in (np.uint8, np.uint16):
        summarise_counts(band_counts(np.zeros((1, 1), dtype)), 0)
