"""Exact per-band statistics of one array: moments, min/max and histograms of an image, and
the per-class counts of a mask. Everything else in the package is built from these."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from geovision.data.histograms import (
    HIGH,
    LOW,
    NUMBER,
    TOTAL,
    TOTAL_SQ,
    band_summaries,
)

DEFAULT_BINS_16BIT = 1024
OBJECT_SIZE_BINS = 32  # object areas in [2**k, 2**(k+1)) pixels, k = 0..31


@dataclass(frozen=True)
class BandStats:
    """Per-band moments of a set of pixels (one image, a split, ...): arrays of length C.

    `m2` is the sum of squared deviations from the mean; `var` is the population variance
    m2 / count. `hist[c, k]` counts band c's values in [hist_lo + k * bin_width,
    hist_lo + (k + 1) * bin_width); it exists for 8- and 16-bit integer data only.
    """

    count: np.ndarray
    mean: np.ndarray
    m2: np.ndarray
    min: np.ndarray
    max: np.ndarray
    hist: np.ndarray | None = None
    hist_lo: int = 0
    bin_width: int = 1

    @property
    def num_bands(self) -> int:
        return len(self.count)

    @property
    def var(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.count > 0, self.m2 / self.count, np.nan)

    @property
    def std(self) -> np.ndarray:
        return np.sqrt(self.var)

    def merge(self, other: BandStats) -> BandStats:
        """The statistics of both pixel sets together (Chan et al.'s pairwise update)."""
        if other.num_bands != self.num_bands:
            raise ValueError(f"Cannot merge statistics of {self.num_bands} and "
                             f"{other.num_bands} bands.")
        if (self.hist is None) != (other.hist is None) or (
                self.hist is not None and (self.hist.shape != other.hist.shape
                                           or self.hist_lo != other.hist_lo
                                           or self.bin_width != other.bin_width)):
            raise ValueError("Cannot merge statistics with different histogram layouts: compute "
                             "both from the same dtype with the same bins_16bit.")
        count, mean, m2 = chan(self.count, self.mean, self.m2, other.count, other.mean, other.m2)
        return BandStats(
            count=count, mean=mean, m2=m2,
            min=np.fmin(self.min, other.min), max=np.fmax(self.max, other.max),
            hist=None if self.hist is None else self.hist + other.hist,
            hist_lo=self.hist_lo, bin_width=self.bin_width,
        )

    def percentiles(self, q: float | Sequence[float]) -> np.ndarray:
        """Per-band percentiles from the histogram, shape (C, len(q)).

        The nearest-rank value (numpy's "inverted_cdf" method), exact when bin_width is 1 and
        otherwise the lower edge of the bin that holds it.
        """
        if self.hist is None:
            raise ValueError("Percentiles need a histogram, which only 8- and 16-bit integer "
                             "images have; float statistics carry moments only.")
        qs = np.atleast_1d(np.asarray(q, dtype=np.float64))
        if np.any((qs < 0) | (qs > 100)):
            raise ValueError(f"Percentiles must lie in [0, 100], got {qs.tolist()}.")
        out = np.full((self.num_bands, len(qs)), np.nan)
        cumulative = np.cumsum(self.hist, axis=1)
        for band, total in enumerate(self.count):
            if total == 0:
                continue
            ranks = np.maximum(np.ceil(qs / 100 * total), 1)
            bins = np.searchsorted(cumulative[band], ranks, side="left")
            out[band] = self.hist_lo + bins * self.bin_width
        return out


def chan(na: np.ndarray, ma: np.ndarray, m2a: np.ndarray, nb: np.ndarray, mb: np.ndarray,
          m2b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Chan's formula: count, mean and M2 of two pixel sets from theirs (elementwise)."""
    na, nb = np.asarray(na, dtype=np.int64), np.asarray(nb, dtype=np.int64)
    n = na + nb
    fa, fb = na.astype(np.float64), nb.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        delta = mb - ma
        mean = np.where(nb == 0, ma, np.where(na == 0, mb, ma + delta * (fb / n)))
        m2 = np.where(nb == 0, m2a, np.where(na == 0, m2b, m2a + m2b + delta**2 * (fa * fb / n)))
    return n, mean, m2


def tree_reduce(count: np.ndarray, mean: np.ndarray, m2: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Merge rows (axis 0) pairwise in a balanced tree: log2(N) vectorised Chan steps."""
    while len(count) > 1:
        half = len(count) // 2
        pair = slice(0, 2 * half, 2), slice(1, 2 * half, 2)
        merged = chan(count[pair[0]], mean[pair[0]], m2[pair[0]],
                       count[pair[1]], mean[pair[1]], m2[pair[1]])
        if len(count) % 2:
            merged = tuple(np.concatenate([m, a[-1:]]) for m, a in zip(merged, (count, mean, m2),
                                                                        strict=True))
        count, mean, m2 = merged
    return count[0], mean[0], m2[0]


def histogram_layout(dtype: np.dtype, bins_16bit: int = DEFAULT_BINS_16BIT
                     ) -> tuple[int, int, int] | None:
    """(hist_lo, bin_width, bins) of the exact histogram for `dtype`, None if it has none."""
    dtype = np.dtype(dtype)
    if not np.issubdtype(dtype, np.integer) or dtype.itemsize > 2:
        return None
    num_values = 1 << (8 * dtype.itemsize)
    bins = num_values if dtype.itemsize == 1 else bins_16bit
    if bins < 1 or bins > num_values or num_values % bins or bins & (bins - 1):
        raise ValueError(f"bins_16bit={bins_16bit} must be a power of two between 1 and 65536.")
    return int(np.iinfo(dtype).min), num_values // bins, bins


def array_stats(image: np.ndarray, nodata: float | None = None, *,
                bins_16bit: int = DEFAULT_BINS_16BIT) -> BandStats:
    """Exact per-band statistics of one (C, H, W) image, ignoring NaN and `nodata` pixels.

    8- and 16-bit integer images get histograms (256 bins for 8 bit, `bins_16bit` for 16 bit).
    """
    image = np.asarray(image)
    if image.ndim != 3:
        raise ValueError(f"array_stats expects a (C, H, W) image, got shape {image.shape}.")
    layout = histogram_layout(image.dtype, bins_16bit)
    if layout is not None:
        return _integer_stats(image, nodata, *layout)
    if not (np.issubdtype(image.dtype, np.floating) or np.issubdtype(image.dtype, np.integer)):
        raise TypeError(f"array_stats supports integer and float images, not {image.dtype}.")
    return _float_stats(image, nodata)


def _integer_stats(image: np.ndarray, nodata: float | None, lo: int, bin_width: int,
                   bins: int) -> BandStats:
    skip = integer_nodata(nodata, image.dtype, lo, bins * bin_width)
    hist, summary = band_summaries(image.reshape(image.shape[0], -1), bin_width, skip)
    count, mean, m2, low, high = summary_moments(summary, lo)
    return BandStats(count=count, mean=mean, m2=m2, min=low, max=high, hist=hist, hist_lo=lo,
                     bin_width=bin_width)


def integer_nodata(nodata: float | None, dtype: np.dtype, lo: int, num_values: int
                    ) -> int | None:
    """The integer value left out of `dtype` images' statistics, if any (NaN: none)."""
    if nodata is None or (isinstance(nodata, float) and math.isnan(nodata)):
        return None
    if nodata != int(nodata) or not lo <= nodata < lo + num_values:
        raise ValueError(f"nodata={nodata} is not a value of {dtype} images.")
    return int(nodata)


def summary_moments(summary: np.ndarray, lo: int) -> tuple[np.ndarray, ...]:
    """count, mean, m2, min and max of each row of (rows, SUMMARY_COLUMNS) band summaries."""
    count, total, total_sq = summary[:, NUMBER], summary[:, TOTAL], summary[:, TOTAL_SQ]
    low, high = (summary[:, column].astype(np.float64) + lo for column in (LOW, HIGH))
    empty = count == 0
    low[empty] = high[empty] = np.nan
    with np.errstate(invalid="ignore", divide="ignore"):
        if float(count.max(initial=0)) * float(total_sq.max(initial=0)) < 2.0**53:
            # n * sum_sq - sum**2 and sum are exact float64 integers, so each value below is
            # rounded once, as with Python ints (8-bit bands of up to 370,000 pixels at least)
            mean = total / count
            m2 = (count * total_sq - total * total) / count
        else:  # Python ints: exact products, one rounding per division
            mean, m2 = np.empty(len(count)), np.empty(len(count))
            sums = zip(count.tolist(), total.tolist(), total_sq.tolist(), strict=True)
            for row, (n, s, ss) in enumerate(sums):
                mean[row] = s / n if n else np.nan
                m2[row] = (n * ss - s * s) / n if n else 0.0
    mean[empty], m2[empty] = np.nan, 0.0
    return count.copy(), mean, m2, low, high


def _float_stats(image: np.ndarray, nodata: float | None) -> BandStats:
    num_bands = image.shape[0]
    count = np.zeros(num_bands, dtype=np.int64)
    mean, m2, low, high = (np.full(num_bands, np.nan) for _ in range(4))
    is_float = np.issubdtype(image.dtype, np.floating)
    for band, array in enumerate(image):
        flat = array.reshape(-1)
        valid = np.isnan(flat) if is_float else np.zeros(flat.shape, dtype=bool)
        if nodata is not None and not math.isnan(nodata):
            valid |= flat == nodata
        np.logical_not(valid, out=valid)
        if not valid.all():
            flat = flat[valid]
        count[band] = n = flat.size
        if n == 0:
            m2[band] = 0.0
            continue
        x = flat.astype(np.float64)
        mean[band] = center = x.sum() / n
        x -= center
        m2[band] = x @ x
        low[band], high[band] = flat.min(), flat.max()
    return BandStats(count=count, mean=mean, m2=m2, min=low, max=high)


def mask_stats(mask: np.ndarray, image: np.ndarray, num_classes: int) -> dict[str, np.ndarray]:
    """Per-class pixel counts, per-class per-band sums and object-size histograms of a mask.

    Values outside 0..num_classes-1 (an ignore index) belong to no class. Objects are
    4-connected components; `object_size_hist[c, k]` counts class c objects of
    2**k .. 2**(k+1) - 1 pixels.
    """
    from scipy import ndimage

    if mask.shape != image.shape[1:]:
        raise ValueError(f"Mask shape {mask.shape} differs from the image's {image.shape[1:]}.")
    flat = mask.reshape(-1).astype(np.int64)
    inside = (flat >= 0) & (flat < num_classes)
    labels = np.where(inside, flat, num_classes)
    pixels = np.bincount(labels, minlength=num_classes + 1)[:num_classes]
    band_sums = np.stack([
        np.bincount(labels, weights=band.reshape(-1).astype(np.float64),
                    minlength=num_classes + 1)[:num_classes]
        for band in image
    ], axis=1)
    size_hist = np.zeros((num_classes, OBJECT_SIZE_BINS), dtype=np.int64)
    for cls in np.flatnonzero(pixels):
        components, num = ndimage.label(mask == cls)
        sizes = np.bincount(components.reshape(-1))[1:num + 1]
        size_hist[cls] = np.bincount(np.log2(sizes).astype(np.int64),
                                     minlength=OBJECT_SIZE_BINS)[:OBJECT_SIZE_BINS]
    return {"pixels": pixels, "band_sums": band_sums, "object_size_hist": size_hist}
