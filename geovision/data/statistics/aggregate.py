"""Split aggregation: a split's statistics merged from the per-image rows (no pixel is read
again), the train split's MEANS / STD_DEVS, and the checks a statistics table must pass."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from geovision.data.splits import ROW_SPLITS, rows_in_split
from geovision.data.statistics.kernels import BandStats, histogram_layout, tree_reduce
from geovision.data.statistics.rows import HIST_BINS, STAT_NAMES, band_column, value_bins
from geovision.data.transforms import unit_scale
from geovision.errors import DataError


def _table_dtype(rows: pd.DataFrame) -> np.dtype:
    dtypes = sorted(set(rows["dtype"]))
    if len(dtypes) != 1:
        raise DataError(f"The statistics table mixes image dtypes {dtypes}; per-split "
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
        raise DataError(f"The statistics table mixes histograms of {bins} bins; recompute the "
                        "statistics of the split with one bins_16bit.")
    return int(bins[0])


def _summed_hists(hists: list[np.ndarray], mins: pd.Series, lo: int, width: int,
                  bins: int) -> np.ndarray:
    """The sum of per-image histograms stored from the bin of each image's min (a full-length
    one from bin 0), as (bins,) int64."""
    lengths = np.array([len(h) for h in hists], np.int64)
    if (lengths == bins).all():
        return np.stack(hists).astype(np.int64).sum(axis=0)
    first = np.where(lengths == bins, 0, value_bins(mins.to_numpy(np.float64), lo, width))
    starts = np.cumsum(lengths) - lengths  # of each histogram in the concatenation
    position = np.arange(lengths.sum()) + np.repeat(first - starts, lengths)
    values = np.concatenate(hists).astype(np.float64)  # counts: exact below 2**53
    return np.rint(np.bincount(position, weights=values, minlength=bins)).astype(np.int64)


def split_statistics(table: pd.DataFrame, split: str, bands: Sequence[str]) -> BandStats:
    """Statistics of every pixel of `split` (train, val, trainval, test, all), merged from the
    per-image rows of `table`, as if computed over the split's pixels at once."""
    rows = table[rows_in_split(table["split"], split)]
    if rows.empty:
        raise DataError(f"The statistics table has no images in split {split!r}; choose a "
                        "split that holds images or recompute the statistics.")
    count = rows[[band_column(b, "count") for b in bands]].to_numpy(np.int64)
    mean = rows[[band_column(b, "mean") for b in bands]].to_numpy(np.float64)
    var = rows[[band_column(b, "var") for b in bands]].to_numpy(np.float64)
    m2 = np.where(count > 0, var * count, 0.0)
    total, mean, m2 = tree_reduce(count, mean, m2)
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
