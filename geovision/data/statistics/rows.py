"""Per-image rows: the worker that reads images and counts them into rows of statistics, and
the table those rows become (one row per image, columns per band and per class).

A time series counts as one image of all its real dates stacked: its row's `height` is the
dates times the image height, so counts still equal height x width."""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from geovision.data.histograms import SUMMARY_COLUMNS, band_summariser
from geovision.data.image_io import ImageReadError
from geovision.data.statistics.kernels import (
    DEFAULT_BINS_16BIT,
    BandStats,
    array_stats,
    histogram_layout,
    integer_nodata,
    mask_stats,
    summary_moments,
)
from geovision.data.temporal import TimeSeries, date_mean, stacked_dates

STAT_NAMES = ("count", "mean", "var", "std", "min", "max")
# per row, the bins of the image's full histograms (0: none): a row stores only those from
# its band's min to its max (a 12-band uint16 image of N(1500, 400) values: 47-54 of 1,024)
HIST_BINS = "hist_bins"
HIST_BYTES = 4 << 20  # histograms held for a group (65,536 bins: 0.5 MiB per band)


def band_column(band: str, stat: str) -> str:
    """Name of the table column holding `stat` of `band` (e.g. "red_mean", "red_hist")."""
    return f"{band}_{stat}"


def class_column(class_name: str, stat: str) -> str:
    """Name of a segmentation column, e.g. "class_water_pixels", "class_water_red_sum"."""
    return f"class_{class_name}_{stat}"


@dataclass(frozen=True)
class ImageRow:
    """The statistics of one image, before they become a table row."""

    df_idx: Any
    height: int
    width: int
    dtype: str
    stats: BandStats
    classes: dict[str, Any] | None  # segmentation columns


@dataclass(frozen=True)
class RowBlock:
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

    def hist_to_file(self, folder: str) -> RowBlock:
        """This block with its histograms saved to a new file in `folder` rather than carried
        by the pool's result pipe, which is slower for megabytes of histograms (measured in
        bench/statistics.py)."""
        if self.hist is None:
            return self
        path = os.path.join(folder, f"{uuid.uuid4().hex}.npy")
        np.save(path, self.hist)
        return replace(self, hist=None, hist_file=path)

    def hist_from_file(self) -> RowBlock:
        """This block with its histograms read back from `hist_file`, which is then removed."""
        if self.hist_file is None:
            return self
        hist = np.load(self.hist_file)
        os.remove(self.hist_file)
        return replace(self, hist=hist, hist_file=None)

    @classmethod
    def from_rows(cls, rows: Sequence[ImageRow]) -> RowBlock:
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
        first, last = (value_bins(values, self.hist_lo, self.bin_width)
                       for values in (self.min[:, band], self.max[:, band]))
        last[np.isnan(self.max[:, band])] = -1
        bins = self.hist.shape[2]
        return [row if (a, b) == (0, bins - 1) else row[a:b + 1].copy()
                for row, a, b in zip(self.hist[:, band], first.tolist(), last.tolist(),
                                     strict=True)]


def value_bins(values: np.ndarray, hist_lo: int, bin_width: int) -> np.ndarray:
    """The histogram bin of each of `values` (float, exact integers), 0 for NaN."""
    bins = np.zeros(len(values), np.int64)
    valid = ~np.isnan(values)
    bins[valid] = (values[valid].astype(np.int64) - hist_lo) // bin_width
    return bins


@dataclass
class StatisticsWorker:
    """Turns samples of one dataset into rows of statistics; one per process of the pool (or
    the caller's own, serially). `hist_dir` is where a pool worker leaves histograms."""

    dataset: Any
    nodata: float | None = None
    bins_16bit: int = DEFAULT_BINS_16BIT
    on_error: str = "raise"
    hist_dir: str | None = None

    def rows(self, indices: Sequence[int]) -> tuple[list[RowBlock], list[tuple[int, tuple]]]:
        """Statistics of samples `indices` of the dataset, and (index, (path, reason)) for
        each image skipped with on_error="skip".

        Each image is counted as soon as it is read, while its pixels are still in the CPU's
        cache (faster than counting groups of images read ahead: bench/statistics.py). Images
        of one integer dtype and band count then have their moments computed together from
        their band summaries.
        """
        dataset = self.dataset
        blocks: list[RowBlock] = []
        skipped: list[tuple[int, tuple]] = []
        float_rows: list[ImageRow] = []  # images without histograms
        group: _IntegerGroup | None = None
        for position, index in enumerate(indices):
            try:
                image, target, df_idx = dataset.read_raw(index)
            except ImageReadError as exc:
                if self.on_error == "raise":
                    raise
                skipped.append((index, (str(dataset.split_df["image_path"].iloc[index]),
                                        str(exc))))
                continue
            if isinstance(image, TimeSeries):
                # Per band over all real dates; class band sums of the dates' mean image, so
                # a class's sum over its pixels is its mean over every date.
                classes = (class_columns(dataset, date_mean(image), target)
                           if dataset.TASK == "segmentation" else None)
                image = stacked_dates(image)
            else:
                image = np.asarray(image)
                classes = (class_columns(dataset, image, target)
                           if dataset.TASK == "segmentation" else None)
            if group is not None and not group.accepts(image):
                blocks.append(group.block())
                group = None
            if group is None:
                layout = (histogram_layout(image.dtype, self.bins_16bit) if image.ndim == 3
                          else None)
                if layout is None:
                    float_rows.append(self._image_row(image, df_idx, classes))
                    continue
                group = _IntegerGroup(image, layout, len(indices) - position, self.nodata)
            group.add(image, df_idx, classes)
            del image, target  # before the next read, which can then reuse this memory
            if group.full:
                blocks.append(group.block())
                group = None
        if group is not None:
            blocks.append(group.block())
        if float_rows:
            blocks.append(RowBlock.from_rows(float_rows))
        return blocks, skipped

    def pooled_rows(self, indices: Sequence[int]
                    ) -> tuple[list[RowBlock], list[tuple[int, tuple]]]:
        """`rows` in a pool worker: the blocks' histograms go back through files in
        `hist_dir`."""
        blocks, skipped = self.rows(indices)
        return [block.hist_to_file(self.hist_dir) for block in blocks], skipped

    def _image_row(self, image: np.ndarray, df_idx: Any,
                   classes: dict[str, Any] | None) -> ImageRow:
        """The statistics of one image without a histogram (a float dtype)."""
        stats = array_stats(image, self.nodata, bins_16bit=self.bins_16bit)
        return ImageRow(df_idx, image.shape[1], image.shape[2], str(image.dtype), stats,
                        classes)


class _IntegerGroup:
    """Histograms and band summaries of images of one integer dtype and band count, turned
    into moments in one call rather than one call per image, whose Python overhead is a
    sizeable fraction of the count itself. At most `images`, and HIST_BYTES of histograms."""

    def __init__(self, image: np.ndarray, layout: tuple[int, int, int], images: int,
                 nodata: float | None) -> None:
        self.dtype, self.num_bands, self.layout = image.dtype, image.shape[0], layout
        lo, bin_width, bins = layout
        skip = integer_nodata(nodata, image.dtype, lo, bins * bin_width)
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

    def block(self) -> RowBlock:
        num_images = len(self.df_idx)
        summary = self.summary[:num_images].reshape(num_images * self.num_bands, -1)
        count, mean, m2, low, high = (
            column.reshape(num_images, self.num_bands)
            for column in summary_moments(summary, self.layout[0]))
        return RowBlock(df_idx=self.df_idx, height=[h for h, _ in self.shapes],
                         width=[w for _, w in self.shapes],
                         dtype=[str(self.dtype)] * num_images, count=count, mean=mean, m2=m2,
                         min=low, max=high, hist=self.hist[:num_images],
                         classes=None if self.classes[0] is None else self.classes,
                         hist_lo=self.layout[0], bin_width=self.layout[1])


def class_columns(dataset: Any, image: np.ndarray, mask: np.ndarray) -> dict[str, Any]:
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


def rows_table(blocks: list[RowBlock], bands: Sequence[str]) -> pd.DataFrame:
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
