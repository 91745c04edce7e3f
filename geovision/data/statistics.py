"""Exact per-band image statistics, per image and per split.

Sampling pixels makes statistics irreproducible and integer data loses nothing to exactness, so
every pixel counts: integer images (8 and 16 bit) get an exact histogram and the integer count,
sum, sum of squares, min and max of each band in one compiled pass; float images take a float64
two-pass over the array already in memory. Images and splits merge with Chan's parallel
formula, so a split's statistics are computed from the per-image rows without reading any pixel
again.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import shutil
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from geovision.data.histograms import (
    HIGH,
    LOW,
    NUMBER,
    SUMMARY_COLUMNS,
    TOTAL,
    TOTAL_SQ,
    band_summaries,
    band_summariser,
    load_kernels,
)
from geovision.data.image_io import ImageReadError
from geovision.data.splits import ROW_SPLITS, rows_in_split
from geovision.data.transforms import unit_scale

DEFAULT_BINS_16BIT = 1024
STAT_NAMES = ("count", "mean", "var", "std", "min", "max")
OBJECT_SIZE_BINS = 32  # object areas in [2**k, 2**(k+1)) pixels, k = 0..31
ON_ERROR = ("raise", "skip")
# images a worker takes at a time, and at least 8 chunks a worker: each chunk's round trip
# through a pool costs about a millisecond (2,000 images in 2 processes: 125-image chunks
# 0.80-0.82x the read floor, 64-image ones 0.78-0.81x)
CHUNK_SIZE = 128
# per row, the bins of the image's full histograms (0: none): a row stores only those from
# its band's min to its max (a 12-band uint16 image of N(1500, 400) values: 47-54 of 1,024)
HIST_BINS = "hist_bins"
HIST_BYTES = 4 << 20  # histograms held for a group (65,536 bins: 0.5 MiB per band)


# ----- one array --------------------------------------------------------------------------------


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
        count, mean, m2 = _chan(self.count, self.mean, self.m2, other.count, other.mean, other.m2)
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


def _chan(na: np.ndarray, ma: np.ndarray, m2a: np.ndarray, nb: np.ndarray, mb: np.ndarray,
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


def _tree_reduce(count: np.ndarray, mean: np.ndarray, m2: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Merge rows (axis 0) pairwise in a balanced tree: log2(N) vectorised Chan steps."""
    while len(count) > 1:
        half = len(count) // 2
        pair = slice(0, 2 * half, 2), slice(1, 2 * half, 2)
        merged = _chan(count[pair[0]], mean[pair[0]], m2[pair[0]],
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
    skip = _integer_nodata(nodata, image.dtype, lo, bins * bin_width)
    hist, summary = band_summaries(image.reshape(image.shape[0], -1), bin_width, skip)
    count, mean, m2, low, high = _summary_moments(summary, lo)
    return BandStats(count=count, mean=mean, m2=m2, min=low, max=high, hist=hist, hist_lo=lo,
                     bin_width=bin_width)


def _integer_nodata(nodata: float | None, dtype: np.dtype, lo: int, num_values: int
                    ) -> int | None:
    """The integer value left out of `dtype` images' statistics, if any (NaN: none)."""
    if nodata is None or (isinstance(nodata, float) and math.isnan(nodata)):
        return None
    if nodata != int(nodata) or not lo <= nodata < lo + num_values:
        raise ValueError(f"nodata={nodata} is not a value of {dtype} images.")
    return int(nodata)


def _summary_moments(summary: np.ndarray, lo: int) -> tuple[np.ndarray, ...]:
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


# ----- masks ------------------------------------------------------------------------------------


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


# ----- dataset level ----------------------------------------------------------------------------


def band_column(band: str, stat: str) -> str:
    """Name of the table column holding `stat` of `band` (e.g. "red_mean", "red_hist")."""
    return f"{band}_{stat}"


def class_column(class_name: str, stat: str) -> str:
    """Name of a segmentation column, e.g. "class_water_pixels", "class_water_red_sum"."""
    return f"class_{class_name}_{stat}"


@dataclass
class ImageStatistics:
    """Per-image statistics: `table` is the df (rows that could be read) joined with per-band
    columns; `skipped` lists (path, reason) for images left out with on_error="skip"."""

    table: pd.DataFrame
    bands: tuple[str, ...]
    skipped: list[tuple[str, str]] = field(default_factory=list)


_WORKER: dict[str, Any] = {}


def _worker_state(dataset: Any, nodata: float | None, bins_16bit: int, on_error: str,
                  hist_dir: str | None = None) -> None:
    _WORKER.update(dataset=dataset, nodata=nodata, bins_16bit=bins_16bit, on_error=on_error,
                   hist_dir=hist_dir)


@dataclass(frozen=True)
class _ImageRow:
    """The statistics of one image, before they become a table row."""

    df_idx: Any
    height: int
    width: int
    dtype: str
    stats: BandStats
    classes: dict[str, Any] | None  # segmentation columns


@dataclass(frozen=True)
class _RowBlock:
    """The rows of a run of images as stacked arrays, one row per image: a worker sends a
    few large arrays rather than many small ones, and the table is assembled column-wise
    (a dict per row cost as much as the statistics themselves)."""

    df_idx: list[Any]
    height: list[int]
    width: list[int]
    dtype: list[str]
    count: np.ndarray  # (n, C), and so on for the moments
    mean: np.ndarray
    m2: np.ndarray
    min: np.ndarray
    max: np.ndarray
    hist: np.ndarray | None  # (n, C, bins) for integer images
    classes: list[dict[str, Any]] | None
    hist_lo: int = 0  # the value counted by column 0 of `hist`
    bin_width: int = 1
    hist_file: str | None = None  # where `hist` waits while the block travels between processes

    def hist_to_file(self, folder: str) -> _RowBlock:
        """This block with its histograms saved to a new file in `folder` rather than carried
        by the pool's result pipe: for 2,000 4-band uint8 images in 2 processes (16 MiB of
        histograms, a 0.7 s run) the pipe added 40-75 ms, files 0-15 ms."""
        if self.hist is None:
            return self
        path = os.path.join(folder, f"{uuid.uuid4().hex}.npy")
        np.save(path, self.hist)
        return replace(self, hist=None, hist_file=path)

    def hist_from_file(self) -> _RowBlock:
        """This block with its histograms read back from `hist_file`, which is then removed."""
        if self.hist_file is None:
            return self
        hist = np.load(self.hist_file)
        os.remove(self.hist_file)
        return replace(self, hist=hist, hist_file=None)

    @classmethod
    def from_rows(cls, rows: Sequence[_ImageRow]) -> _RowBlock:
        """A block of rows of images without histograms."""
        def stack(name: str) -> np.ndarray:
            return np.stack([getattr(row.stats, name) for row in rows])

        return cls(df_idx=[row.df_idx for row in rows], height=[row.height for row in rows],
                   width=[row.width for row in rows], dtype=[row.dtype for row in rows],
                   count=stack("count"), mean=stack("mean"), m2=stack("m2"), min=stack("min"),
                   max=stack("max"), hist=None,
                   classes=None if rows[0].classes is None else [row.classes for row in rows])

    def band_hists(self, band: int) -> list[np.ndarray | None]:
        """Each image's histogram of `band`, from the bin of its smallest value to the bin of
        its largest (empty for a band without valid pixels)."""
        if self.hist is None:
            return [None] * len(self.df_idx)
        first, last = (_value_bins(values, self.hist_lo, self.bin_width)
                       for values in (self.min[:, band], self.max[:, band]))
        last[np.isnan(self.max[:, band])] = -1
        bins = self.hist.shape[2]
        return [row if (a, b) == (0, bins - 1) else row[a:b + 1].copy()
                for row, a, b in zip(self.hist[:, band], first.tolist(), last.tolist(),
                                     strict=True)]


def _value_bins(values: np.ndarray, hist_lo: int, bin_width: int) -> np.ndarray:
    """The histogram bin of each of `values` (float, exact integers), 0 for NaN."""
    bins = np.zeros(len(values), np.int64)
    valid = ~np.isnan(values)
    bins[valid] = (values[valid].astype(np.int64) - hist_lo) // bin_width
    return bins


def _image_rows(indices: Sequence[int]) -> tuple[list[_RowBlock], list[tuple[int, tuple]]]:
    """Statistics of samples `indices` of the worker's dataset, and (index, (path, reason))
    for each image skipped with on_error="skip".

    Each image is counted as soon as it is read, while its pixels are still in the CPU's
    cache: counting groups of images read 8 MiB ahead took 723-744 us per 4 x 256 x 256
    image, this 680-688 us. Images of one integer dtype and band count then have their moments
    computed together from their band summaries.
    """
    dataset = _WORKER["dataset"]
    blocks: list[_RowBlock] = []
    skipped: list[tuple[int, tuple]] = []
    float_rows: list[_ImageRow] = []  # images without histograms
    group: _IntegerGroup | None = None
    for position, index in enumerate(indices):
        try:
            image, target, df_idx = dataset.read_raw(index)
        except ImageReadError as exc:
            if _WORKER["on_error"] == "raise":
                raise
            skipped.append((index, (str(dataset.split_df["image_path"].iloc[index]),
                                    str(exc))))
            continue
        image = np.asarray(image)
        classes = (_class_columns(dataset, image, target) if dataset.TASK == "segmentation"
                   else None)
        if group is not None and not group.accepts(image):
            blocks.append(group.block())
            group = None
        if group is None:
            layout = (histogram_layout(image.dtype, _WORKER["bins_16bit"]) if image.ndim == 3
                      else None)
            if layout is None:
                float_rows.append(_image_row(image, df_idx, classes))
                continue
            group = _IntegerGroup(image, layout, len(indices) - position)
        group.add(image, df_idx, classes)
        del image, target  # before the next read, which can then reuse this memory
        if group.full:
            blocks.append(group.block())
            group = None
    if group is not None:
        blocks.append(group.block())
    if float_rows:
        blocks.append(_RowBlock.from_rows(float_rows))
    return blocks, skipped


def _pooled_image_rows(indices: Sequence[int]) -> tuple[list[_RowBlock], list[tuple[int, tuple]]]:
    """`_image_rows` in a pool worker: the blocks' histograms go back through files in the run's
    folder for them."""
    blocks, skipped = _image_rows(indices)
    return [block.hist_to_file(_WORKER["hist_dir"]) for block in blocks], skipped


class _IntegerGroup:
    """Histograms and band summaries of images of one integer dtype and band count, turned
    into moments in one call: per image, the Python around it cost a fifth as much as the
    count itself. At most `images`, and HIST_BYTES of histograms."""

    def __init__(self, image: np.ndarray, layout: tuple[int, int, int], images: int) -> None:
        self.dtype, self.num_bands, self.layout = image.dtype, image.shape[0], layout
        lo, bin_width, bins = layout
        skip = _integer_nodata(_WORKER["nodata"], image.dtype, lo, bins * bin_width)
        self.summarise = band_summariser(image.dtype, bin_width, skip)
        capacity = min(images, max(1, HIST_BYTES // (self.num_bands * bins * 8)))
        self.hist = np.empty((capacity, self.num_bands, bins), np.int64)
        self.summary = np.empty((capacity, self.num_bands, SUMMARY_COLUMNS), np.int64)
        self.df_idx: list[Any] = []
        self.shapes: list[tuple[int, int]] = []
        self.classes: list[dict[str, Any] | None] = []

    def accepts(self, image: np.ndarray) -> bool:
        return (image.ndim == 3 and image.dtype == self.dtype
                and image.shape[0] == self.num_bands)

    @property
    def full(self) -> bool:
        return len(self.df_idx) == len(self.hist)

    def add(self, image: np.ndarray, df_idx: Any, classes: dict[str, Any] | None) -> None:
        slot = len(self.df_idx)
        self.summarise(image.reshape(self.num_bands, -1), self.hist[slot], self.summary[slot])
        self.df_idx.append(df_idx)
        self.shapes.append(image.shape[1:])
        self.classes.append(classes)

    def block(self) -> _RowBlock:
        num_images = len(self.df_idx)
        summary = self.summary[:num_images].reshape(num_images * self.num_bands, -1)
        count, mean, m2, low, high = (
            column.reshape(num_images, self.num_bands)
            for column in _summary_moments(summary, self.layout[0]))
        return _RowBlock(df_idx=self.df_idx, height=[h for h, _ in self.shapes],
                         width=[w for _, w in self.shapes],
                         dtype=[str(self.dtype)] * num_images, count=count, mean=mean, m2=m2,
                         min=low, max=high, hist=self.hist[:num_images],
                         classes=None if self.classes[0] is None else self.classes,
                         hist_lo=self.layout[0], bin_width=self.layout[1])


def _image_row(image: np.ndarray, df_idx: Any, classes: dict[str, Any] | None) -> _ImageRow:
    """The statistics of one image without a histogram (a float dtype)."""
    stats = array_stats(image, _WORKER["nodata"], bins_16bit=_WORKER["bins_16bit"])
    return _ImageRow(df_idx, image.shape[1], image.shape[2], str(image.dtype), stats, classes)


def _class_columns(dataset: Any, image: np.ndarray, mask: np.ndarray) -> dict[str, Any]:
    """The segmentation columns of one image: per class its pixels, object sizes and band
    sums."""
    masks = mask_stats(mask, image, dataset.num_classes)
    classes: dict[str, Any] = {}
    for cls, cls_name in enumerate(dataset.CLASS_NAMES):
        classes[class_column(cls_name, "pixels")] = int(masks["pixels"][cls])
        classes[class_column(cls_name, "object_size_hist")] = masks["object_size_hist"][cls]
        for band, name in enumerate(dataset.BANDS):
            classes[class_column(cls_name, f"{name}_sum")] = float(masks["band_sums"][cls, band])
    return classes


def _rows_table(blocks: list[_RowBlock], bands: Sequence[str]) -> pd.DataFrame:
    """The per-image rows as columns: height, width, dtype, HIST_BINS (where images have
    histograms), then per band the STAT_NAMES and the histogram trimmed to the bins from the
    band's min to its max, then the segmentation columns."""
    def joined(name: str) -> np.ndarray:
        return np.concatenate([getattr(block, name) for block in blocks])

    count = joined("count")
    with np.errstate(invalid="ignore", divide="ignore"):
        var = np.where(count > 0, joined("m2") / count, np.nan)
    values = {"count": count, "mean": joined("mean"), "var": var, "std": np.sqrt(var),
              "min": joined("min"), "max": joined("max")}
    columns: dict[str, Any] = {key: [v for block in blocks for v in getattr(block, key)]
                               for key in ("height", "width", "dtype")}
    with_hist = any(block.hist is not None for block in blocks)
    if with_hist:
        columns[HIST_BINS] = [0 if block.hist is None else block.hist.shape[2]
                              for block in blocks for _ in block.df_idx]
    for band, name in enumerate(bands):
        columns.update({band_column(name, stat): values[stat][:, band] for stat in STAT_NAMES})
        if with_hist:
            columns[band_column(name, "hist")] = [h for block in blocks
                                                  for h in block.band_hists(band)]
    index = pd.Index([i for block in blocks for i in block.df_idx], name="df_idx")
    table = pd.DataFrame(columns, index=index)
    if blocks[0].classes is not None:
        classes = pd.DataFrame.from_records(
            [row for block in blocks for row in block.classes], index=table.index)
        table = pd.concat([table, classes], axis=1)
    return table


def compute_image_statistics(dataset_cls: type, root: str | os.PathLike, df: pd.DataFrame, *,
                             workers: int | None = None, progress: bool = True,
                             on_error: str = "raise", nodata: float | None = None,
                             bins_16bit: int = DEFAULT_BINS_16BIT) -> ImageStatistics:
    """Statistics of every image in `df`, computed in `workers` processes (default: all cores).

    Images are read with the dataset's own `read_raw`, so band-count checks and mask decoding
    are the dataset's. A corrupt image raises ImageReadError naming the file, or with
    on_error="skip" is left out of the table and listed in `skipped`.
    """
    if on_error not in ON_ERROR:
        raise ValueError(f"on_error={on_error!r}; use one of {ON_ERROR}.")
    # Missing files are reported per image like corrupt ones (or skipped with on_error).
    dataset = dataset_cls(root, df=df, split="all", check_files=False)
    if workers is None:
        workers = os.cpu_count() or 1
    workers = max(1, min(workers, len(dataset)))
    init_args = (dataset, nodata, bins_16bit, on_error)
    bar = tqdm(total=len(dataset), desc=f"{dataset_cls.NAME} statistics", unit="img",
               leave=True, disable=not progress)
    blocks: list[_RowBlock] = []
    skipped: list[tuple[int, tuple[str, str]]] = []
    hist_dir = None
    with bar:
        if workers == 1:
            _worker_state(*init_args)
            size = CHUNK_SIZE
            pool = None
        else:
            load_kernels()  # once here: forked workers inherit them
            hist_dir = tempfile.mkdtemp(prefix="geovision-statistics-")
            pool = multiprocessing.get_context().Pool(workers, _worker_state,
                                                      (*init_args, hist_dir))
            size = max(1, min(CHUNK_SIZE, len(dataset) // (workers * 8)))
        chunks = [range(i, min(i + size, len(dataset))) for i in range(0, len(dataset), size)]
        results = (map(_image_rows, chunks) if pool is None
                   else pool.imap_unordered(_pooled_image_rows, chunks))
        try:
            for chunk_blocks, chunk_skipped in results:
                blocks += [block.hist_from_file() for block in chunk_blocks]
                skipped += chunk_skipped
                bar.update(sum(len(block.df_idx) for block in chunk_blocks)
                           + len(chunk_skipped))
        except BaseException:
            if pool is not None:
                pool.terminate()  # an error: stop the workers now
            raise
        finally:
            _WORKER.clear()
            if pool is not None:
                # Normally the workers exit on their own: a signal would reach handlers they
                # inherited (under Dagster, SIGTERM raises and prints a traceback).
                pool.close()
                pool.join()
            if hist_dir is not None:  # histograms of blocks not collected after an error
                shutil.rmtree(hist_dir, ignore_errors=True)
    stats = _rows_table(blocks, dataset_cls.BANDS).sort_index() if blocks else None
    table = df.join(stats, how="inner") if stats is not None else df.iloc[:0]
    table.index.name = df.index.name
    return ImageStatistics(table=table, bands=tuple(dataset_cls.BANDS),
                           skipped=[problem for _, problem in sorted(skipped)])


def _table_dtype(rows: pd.DataFrame) -> np.dtype:
    dtypes = sorted(set(rows["dtype"]))
    if len(dtypes) != 1:
        raise ValueError(f"The statistics table mixes image dtypes {dtypes}; per-split "
                         "statistics need one dtype. Convert the images to one dtype first.")
    return np.dtype(dtypes[0])


def _table_bins(rows: pd.DataFrame, hist_column: str) -> int:
    """The bins of the full histograms of `rows` (one dtype): their HIST_BINS, or in tables
    written before rows were trimmed, the length of every stored histogram."""
    if HIST_BINS in rows:
        bins = sorted(set(rows[HIST_BINS]))
    else:
        bins = sorted({len(h) for h in rows[hist_column]})
    if len(bins) != 1:
        raise ValueError(f"The statistics table mixes histograms of {bins} bins; recompute the "
                         "statistics of the split with one bins_16bit.")
    return int(bins[0])


def _summed_hists(hists: list[np.ndarray], mins: pd.Series, lo: int, width: int,
                  bins: int) -> np.ndarray:
    """The sum of per-image histograms stored from the bin of each image's min (a full-length
    one from bin 0), as (bins,) int64."""
    lengths = np.array([len(h) for h in hists], np.int64)
    if (lengths == bins).all():
        return np.stack(hists).astype(np.int64).sum(axis=0)
    first = np.where(lengths == bins, 0, _value_bins(mins.to_numpy(np.float64), lo, width))
    starts = np.cumsum(lengths) - lengths  # of each histogram in the concatenation
    position = np.arange(lengths.sum()) + np.repeat(first - starts, lengths)
    values = np.concatenate(hists).astype(np.float64)  # counts: exact below 2**53
    return np.rint(np.bincount(position, weights=values, minlength=bins)).astype(np.int64)


def split_statistics(table: pd.DataFrame, split: str, bands: Sequence[str]) -> BandStats:
    """Statistics of every pixel of `split` (train, val, trainval, test, all), merged from the
    per-image rows of `table`, as if computed over the split's pixels at once."""
    rows = table[rows_in_split(table["split"], split)]
    if rows.empty:
        raise ValueError(f"The statistics table has no images in split {split!r}; choose a "
                         "split that holds images or recompute the statistics.")
    count = rows[[band_column(b, "count") for b in bands]].to_numpy(np.int64)
    mean = rows[[band_column(b, "mean") for b in bands]].to_numpy(np.float64)
    var = rows[[band_column(b, "var") for b in bands]].to_numpy(np.float64)
    m2 = np.where(count > 0, var * count, 0.0)
    total, mean, m2 = _tree_reduce(count, mean, m2)
    low = np.fmin.reduce(rows[[band_column(b, "min") for b in bands]].to_numpy(np.float64))
    high = np.fmax.reduce(rows[[band_column(b, "max") for b in bands]].to_numpy(np.float64))
    hist, lo, width = None, 0, 1
    hist_columns = [band_column(b, "hist") for b in bands]
    if all(c in rows.columns for c in hist_columns):
        dtype = _table_dtype(rows)  # one dtype: the same histogram layout (or none) per row
        if histogram_layout(dtype) is not None:
            bins = _table_bins(rows, hist_columns[0])
            lo, width, _ = histogram_layout(dtype, bins_16bit=bins)
            hist = np.stack([_summed_hists(rows[c].to_list(), rows[band_column(b, "min")],
                                           lo, width, bins)
                             for b, c in zip(bands, hist_columns, strict=True)])
    return BandStats(count=total, mean=mean, m2=m2, min=low, max=high, hist=hist, hist_lo=lo,
                     bin_width=width)


def means_and_std_devs(table: pd.DataFrame, bands: Sequence[str], split: str = "train",
                       scale: float | None = None) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """A dataset's MEANS and STD_DEVS: `split`'s per-band mean and std on images scaled to
    [0, 1] by `scale` (default: the dtype's maximum, as the default image transform does)."""
    rows = table[rows_in_split(table["split"], split)]
    stats = split_statistics(table, split, bands)
    divisor = unit_scale(_table_dtype(rows), scale)
    return (tuple(float(m) / divisor for m in stats.mean),
            tuple(float(s) / divisor for s in stats.std))


def check_statistics(table: pd.DataFrame, bands: Sequence[str],
                     df: pd.DataFrame | None = None) -> list[str]:
    """Problems with a statistics table (empty when fine): missing or non-finite statistics,
    pixel counts that do not add up per image or per split, rows missing for `df`."""
    if table.empty:
        return ["The statistics table has no rows."]
    columns = [band_column(b, s) for b in bands for s in STAT_NAMES]
    missing = [c for c in columns + ["height", "width", "split"] if c not in table.columns]
    if missing:
        return [f"The statistics table lacks columns {missing}; recompute it for bands "
                f"{list(bands)}."]
    problems = []
    paths = table["image_path"].astype(str) if "image_path" in table else table.index.astype(str)

    def report(bad: np.ndarray, what: str) -> None:
        if bad.any():
            problems.append(f"{int(bad.sum())} images {what}, e.g. {paths[bad].iloc[0]}.")

    pixels = (table["height"] * table["width"]).to_numpy(np.int64)
    for band in bands:
        count = table[band_column(band, "count")].to_numpy(np.int64)
        values = table[[band_column(band, s) for s in STAT_NAMES[1:]]].to_numpy(np.float64)
        report(count == 0, f"have no valid {band!r} pixels (all nodata)")
        report((count > 0) & ~np.isfinite(values).all(axis=1),
               f"have non-finite {band!r} statistics")
        report(count > pixels, f"count more {band!r} pixels than the image has")
        mean, low, high = values[:, 0], values[:, 3], values[:, 4]
        slack = 1e-9 * np.maximum(np.abs(low), np.abs(high))
        report((count > 0) & ((mean < low - slack) | (mean > high + slack)),
               f"have a {band!r} mean outside [min, max]")
        if band_column(band, "hist") in table.columns:
            sums = np.array([int(np.sum(h)) for h in table[band_column(band, "hist")]])
            report(sums != count, f"have a {band!r} histogram that does not add up to the count")
    splits = [s for s in ROW_SPLITS if (table["split"] == s).any()]
    if not problems:
        total = split_statistics(table, "all", bands)
        parts = sum(split_statistics(table, s, bands).count for s in splits)
        if not np.array_equal(parts, total.count):
            problems.append(f"Per-split pixel counts {parts.tolist()} do not add up to the "
                            f"dataset's {total.count.tolist()}.")
        if not (np.isfinite(total.mean).all() and np.isfinite(total.std).all()):
            problems.append("The dataset-level mean or std is not finite.")
    if df is not None:
        absent = df.index.difference(table.index)
        if len(absent):
            problems.append(f"{len(absent)} df rows have no statistics, e.g. "
                            f"{df.loc[absent[0], 'image_path']}.")
        extra = table.index.difference(df.index)
        if len(extra):
            problems.append(f"{len(extra)} statistics rows are not in the df (index values "
                            f"{extra[:5].tolist()}); recompute the statistics for this df.")
    return problems
