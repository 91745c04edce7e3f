"""Exact per-band image statistics, per image and per split.

Sampling pixels makes statistics irreproducible and integer data loses nothing to exactness, so
every pixel counts: integer images (8 and 16 bit) get an exact histogram and the integer count,
sum, sum of squares, min and max of each band in one compiled pass; float images take a float64
two-pass over the array already in memory. Images and splits merge with Chan's parallel
formula, so a split's statistics are computed from the per-image rows without reading any pixel
again.

    kernels.py     one array: BandStats, array_stats, mask_stats
    rows.py        per-image rows: the worker that reads and counts images, the table
    pool.py        compute_image_statistics: the worker over a dataset, serially or pooled
    aggregate.py   split_statistics, means_and_std_devs, check_statistics
"""

from geovision.data.statistics.aggregate import (
    check_statistics,
    means_and_std_devs,
    split_statistics,
)
from geovision.data.statistics.kernels import (
    DEFAULT_BINS_16BIT,
    OBJECT_SIZE_BINS,
    BandStats,
    array_stats,
    histogram_layout,
    mask_stats,
)
from geovision.data.statistics.pool import ON_ERROR, ImageStatistics, compute_image_statistics
from geovision.data.statistics.rows import (
    HIST_BINS,
    STAT_NAMES,
    StatisticsWorker,
    band_column,
    class_column,
)

__all__ = [
    "DEFAULT_BINS_16BIT", "HIST_BINS", "OBJECT_SIZE_BINS", "ON_ERROR", "STAT_NAMES", "BandStats",
    "ImageStatistics", "StatisticsWorker", "array_stats", "band_column", "check_statistics",
    "class_column", "compute_image_statistics", "histogram_layout", "mask_stats",
    "means_and_std_devs", "split_statistics",
]
