"""Exact per-band value counts of integer images, compiled.

The histogram is the whole cost of exact integer statistics, so it gets its own loop: numpy's
bincount first widens every pixel to int64, and torch's makes two extra passes for the minimum
and maximum. Imagery has long runs of equal values, and a single counter table makes each
increment wait for the previous one to the same bin; 8-bit bands are counted into eight
interleaved tables instead, summed at the end. The kernels are compiled on first use and
cached on disk (numba), so later processes load them in milliseconds.
"""

from __future__ import annotations

import numba
import numpy as np

LANES = 8  # interleaved tables for 8-bit bands (8 x 256 int64 stays in the L1 cache)


@numba.njit(cache=True, nogil=True)
def _counts_8bit(pixels: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    bands, n = pixels.shape
    out = np.zeros((bands, 256), np.int64)
    tables = np.zeros((LANES, 256), np.int64)
    whole = n - n % LANES
    for band in range(bands):
        row = pixels[band]
        tables[:] = 0
        for i in range(0, whole, LANES):
            for lane in range(LANES):
                tables[lane, row[i + lane]] += 1
        for i in range(whole, n):
            tables[0, row[i]] += 1
        for lane in range(LANES):
            for value in range(256):
                out[band, value] += tables[lane, value]
    return out


@numba.njit(cache=True, nogil=True)
def _counts_16bit(pixels: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    bands, n = pixels.shape
    out = np.zeros((bands, 65536), np.int64)
    for band in range(bands):
        row = pixels[band]
        counts = out[band]
        for i in range(n):
            counts[row[i]] += 1
    return out


def band_counts(pixels: np.ndarray) -> np.ndarray:
    """How often each value of the dtype occurs in each row of (bands, pixels) `pixels`.

    Returns (bands, 2**bits) int64 counts for 8- and 16-bit integer dtypes, column k counting
    the value `iinfo(dtype).min + k`.
    """
    pixels = np.ascontiguousarray(pixels)
    if pixels.ndim != 2 or not np.issubdtype(pixels.dtype, np.integer) or (
            pixels.dtype.itemsize > 2):
        raise TypeError("band_counts expects (bands, pixels) of an 8- or 16-bit integer "
                        f"dtype, got {pixels.dtype} of shape {pixels.shape}.")
    unsigned = pixels.view(f"u{pixels.dtype.itemsize}")
    counts = (_counts_8bit if pixels.dtype.itemsize == 1 else _counts_16bit)(unsigned)
    if pixels.dtype.kind == "i":  # two's complement: the negative values come last unsigned
        counts = np.roll(counts, counts.shape[1] // 2, axis=1)
    return counts


def load_kernels() -> None:
    """Compile or load the kernels now, so that processes forked afterwards inherit them
    rather than each paying numba's start-up (about half a second) on its first image."""
    for dtype in (np.uint8, np.uint16):
        band_counts(np.zeros((1, 1), dtype))
