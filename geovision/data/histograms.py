"""Exact per-band histograms and integer moments of 8- and 16-bit images, compiled.

The histogram is the whole cost of exact integer statistics, so it gets its own loops: numpy's
bincount first widens every pixel to int64, and torch's makes two extra passes for the minimum
and maximum. 8-bit bands are counted into per-value tables, from which the number, sum, sum of
squares, smallest and largest value follow; imagery has long runs of equal values, and a single
table makes each increment wait for the previous one to the same value, so eight interleaved
int32 tables are counted and added up at the end. 16-bit bands take the moments pixel by pixel
and count into the binned histogram directly: a table of all 65,536 values, zeroed and
scanned per band, costs many times more on small images (bench/statistics.py). The kernels
are compiled on first use and cached on disk (numba), so later processes load them in
milliseconds.
"""

from __future__ import annotations

from collections.abc import Callable

import numba
import numpy as np

LANES = 8  # interleaved tables for 8-bit bands
LANE_BLOCK = 1 << 32  # pixels counted before the int32 tables are added up: 2**29 per lane
# columns of a band's summary; LOW and HIGH are offsets from the dtype's minimum, -1: none
NUMBER, TOTAL, TOTAL_SQ, LOW, HIGH = range(5)
SUMMARY_COLUMNS = HIGH + 1

Summariser = Callable[[np.ndarray, np.ndarray, np.ndarray], None]


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
def _store_summary(row: np.ndarray, number: int, total: int, total_sq: int, low: int,
                   high: int) -> None:  # pragma: no cover - compiled
    row[NUMBER] = number
    row[TOTAL] = total
    row[TOTAL_SQ] = total_sq
    row[LOW] = low
    row[HIGH] = high


@numba.njit(cache=True, nogil=True)
def _summaries_8bit(pixels: np.ndarray, flip: int, lo: int, skip: int, block: int,
                    hist: np.ndarray, summary: np.ndarray) -> None:  # pragma: no cover
    bands, n = pixels.shape
    # int32 tables (8 KiB in all) rather than int64, and the table fill in a function of its
    # own rather than inline: both compile to faster loops (bench/statistics.py).
    tables = np.zeros((LANES, 256), np.int32)
    for band in range(bands):
        counts = hist[band]
        counts[:] = 0
        for start in range(0, n, block):  # `block` pixels at most per table fill
            tables[:] = 0
            _fill_lanes(pixels[band, start:start + block], tables)
            for stored in range(256):
                total = 0
                for lane in range(LANES):
                    total += tables[lane, stored]
                counts[stored ^ flip] += total
        if 0 <= skip < 256:
            counts[skip] = 0
        number = total = total_sq = 0
        low = high = -1
        for k in range(256):
            c = counts[k]
            if c:
                value = k + lo
                number += c
                total += c * value
                total_sq += c * value * value
                if low < 0:
                    low = k
                high = k
        _store_summary(summary[band], number, total, total_sq, low, high)


@numba.njit(cache=True, nogil=True)
def _summaries_16bit(pixels: np.ndarray, flip: int, lo: int, skip: int, shift: int,
                     hist: np.ndarray, summary: np.ndarray) -> None:  # pragma: no cover
    bands, n = pixels.shape
    for band in range(bands):
        counts = hist[band]
        counts[:] = 0
        row = pixels[band]
        number = total = total_sq = 0
        low, high = 1 << 16, -1
        for i in range(n):
            k = np.int64(row[i]) ^ flip
            if k == skip:
                continue
            counts[k >> shift] += 1
            value = k + lo
            number += 1
            total += value
            total_sq += value * value
            low = min(low, k)
            high = max(high, k)
        if number == 0:
            low = -1
        _store_summary(summary[band], number, total, total_sq, low, high)


def band_summariser(dtype: np.dtype, bin_width: int = 1, skip: int | None = None
                    ) -> Summariser:
    """`summarise(pixels, hist, summary)` for (bands, pixels) arrays of 8- or 16-bit integer
    `dtype`: the histogram of each band, column j counting the values lo + j * bin_width up
    to lo + (j + 1) * bin_width - 1 (lo: the dtype's minimum), into (bands, bins) int64
    `hist`, and its exact NUMBER, TOTAL, TOTAL_SQ, LOW, HIGH into (bands, 5) int64
    `summary`. The value `skip` (nodata) is left out of both.

    Nothing is checked per call: for loops over many images of one dtype, where checks on
    caches cold from decoding cost a tenth of the count. Sums are int64, exact for bands of
    up to 2**31 16-bit pixels.
    """
    dtype = np.dtype(dtype)
    if dtype.kind not in "ui" or dtype.itemsize > 2:
        raise TypeError(f"Histograms are counted for 8- and 16-bit integer dtypes, not {dtype}.")
    bits = 8 * dtype.itemsize
    if bin_width < 1 or bin_width & (bin_width - 1) or bin_width > 1 << bits or (
            bits == 8 and bin_width != 1):
        raise ValueError(f"bin_width={bin_width} for {dtype}: use a power of two up to "
                         f"{1 << bits} for 16-bit dtypes and 1 for 8-bit ones.")
    info = np.iinfo(dtype)
    if skip is not None and not info.min <= skip <= info.max:
        raise ValueError(f"skip={skip} is not a value of {dtype}.")
    lo = int(info.min)
    flip = 1 << (bits - 1) if dtype.kind == "i" else 0  # two's complement: k = stored ^ flip
    skip_k = -1 if skip is None else int(skip) - lo
    unsigned = np.dtype(f"u{dtype.itemsize}")
    if bits == 8:
        def summarise(pixels: np.ndarray, hist: np.ndarray, summary: np.ndarray) -> None:
            _summaries_8bit(pixels.view(unsigned), flip, lo, skip_k, LANE_BLOCK, hist, summary)
    else:
        shift = bin_width.bit_length() - 1

        def summarise(pixels: np.ndarray, hist: np.ndarray, summary: np.ndarray) -> None:
            _summaries_16bit(pixels.view(unsigned), flip, lo, skip_k, shift, hist, summary)
    return summarise


def band_summaries(pixels: np.ndarray, bin_width: int = 1, skip: int | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(hist, summary) of each row of (bands, pixels) `pixels`, as `band_summariser`
    describes; with the default bin_width, hist column k counts the value lo + k."""
    pixels = np.ascontiguousarray(pixels)
    if pixels.ndim != 2 or pixels.dtype.kind not in "ui" or pixels.dtype.itemsize > 2:
        raise TypeError("band_summaries expects (bands, pixels) of an 8- or 16-bit integer "
                        f"dtype, got {pixels.dtype} of shape {pixels.shape}.")
    summarise = band_summariser(pixels.dtype, bin_width, skip)
    bins = (1 << (8 * pixels.dtype.itemsize)) // bin_width
    hist = np.empty((pixels.shape[0], bins), np.int64)
    summary = np.empty((pixels.shape[0], SUMMARY_COLUMNS), np.int64)
    summarise(pixels, hist, summary)
    return hist, summary


def load_kernels() -> None:
    """Compile or load the kernels now, so that processes forked afterwards inherit them
    rather than each paying numba's start-up (about half a second) on its first image."""
    for dtype in (np.uint8, np.uint16):  # signed images are counted through these views
        band_summaries(np.zeros((1, 1), dtype))
