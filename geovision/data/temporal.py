"""The temporal form of the dataset contract: a sample is a time series of images.

A temporal dataset's df has one more column, `dates`: the acquisition dates of the sample's
images, ISO `YYYY-MM-DD` joined by "|", in file order. Its samples are `TimeSeries`:

    images  (T, C, H, W)  every date's image, padded with zero images to T = the df's longest
                          series (so all samples of a dataset, and all shards, have one shape)
    days    (T,)          days since the dataset's REFERENCE_DATE (0 for padding)
    valid   (T,)          True for real dates, False for padding

`read_raw` returns the stored (padded) series, `__getitem__` the standardised one; shards
store the three arrays and return the same tuples. Statistics count every band over all real
dates, never the padding.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import numpy as np
import pandas as pd
import torch

from geovision.data.base import GeoDataset
from geovision.data.image_io import ImageReadError
from geovision.data.transforms import ScaleNormalize
from geovision.errors import DataError

DATE_SEPARATOR = "|"


class TimeSeries(NamedTuple):
    """One sample's images, their dates and which of them are real (not padding).

    A NamedTuple, so DataLoaders collate a batch into one TimeSeries of batched tensors and
    Lightning moves it to the device field by field. `shape` and `dtype` are the images'.
    """

    images: Any  # (T, C, H, W) array or tensor; (B, T, C, H, W) in a batch
    days: Any    # (T,) int; (B, T)
    valid: Any   # (T,) bool; (B, T)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.images.shape)

    @property
    def dtype(self) -> Any:
        return self.images.dtype

    def to(self, device: Any) -> TimeSeries:
        """The three tensors on `device` (what evaluation loops call on each batch part)."""
        return TimeSeries(self.images.to(device), self.days.to(device), self.valid.to(device))


def parse_dates(value: str) -> list[dt.date]:
    """"2019-01-02|2019-01-12" -> the dates, refusing anything else."""
    try:
        return [dt.date.fromisoformat(part) for part in value.split(DATE_SEPARATOR)]
    except (AttributeError, ValueError) as exc:
        raise DataError(f"dates {value!r} are not ISO dates joined by {DATE_SEPARATOR!r} "
                        "(e.g. 2019-01-02|2019-01-12).") from exc


def join_dates(dates: Sequence[dt.date]) -> str:
    return DATE_SEPARATOR.join(d.isoformat() for d in dates)


def days_since(dates: Sequence[dt.date], reference: dt.date) -> np.ndarray:
    return np.array([(d - reference).days for d in dates], dtype=np.int32)


def pad_series(images: np.ndarray, days: np.ndarray, length: int) -> TimeSeries:
    """A (t, C, H, W) series as a TimeSeries padded with zero images to `length` dates."""
    t = images.shape[0]
    padded = np.zeros((length, *images.shape[1:]), dtype=images.dtype)
    padded[:t] = images
    all_days = np.zeros(length, dtype=np.int32)
    all_days[:t] = days
    valid = np.zeros(length, dtype=bool)
    valid[:t] = True
    return TimeSeries(padded, all_days, valid)


def stacked_dates(series: TimeSeries) -> np.ndarray:
    """The real dates' images as one (C, T * H, W) image: what per-band statistics over all
    dates count (padding excluded)."""
    frames = np.asarray(series.images)[np.asarray(series.valid, dtype=bool)]
    t, c, h, w = frames.shape
    return np.ascontiguousarray(frames.transpose(1, 0, 2, 3)).reshape(c, t * h, w)


def date_mean(series: TimeSeries) -> np.ndarray:
    """(C, H, W) float64 mean of the real dates' images: its per-class band sums divided by
    a class's pixels are the class's band means over all dates."""
    frames = np.asarray(series.images)[np.asarray(series.valid, dtype=bool)]
    return frames.astype(np.float64).mean(axis=0)


class SeriesNormalize:
    """TimeSeries of stored arrays -> TimeSeries of tensors: images scaled and standardised
    per band exactly as ScaleNormalize does a single image (padding stays zero), days as
    int64, valid as bool."""

    def __init__(self, means: Sequence[float], std_devs: Sequence[float],
                 scale: float | None = None) -> None:
        self.normalize = ScaleNormalize(means, std_devs, scale)

    def __call__(self, series: TimeSeries) -> TimeSeries:
        valid = torch.from_numpy(np.asarray(series.valid, dtype=bool).copy())
        images = self.normalize(np.asarray(series.images))  # (T, C, H, W): per band on C
        images[~valid] = 0.0
        return TimeSeries(images, torch.from_numpy(np.asarray(series.days, np.int64)), valid)


class TemporalDataset(GeoDataset):
    """Base of datasets whose samples are time series (see the module docstring).

    Subclasses set REFERENCE_DATE, build a df with the `dates` column and implement
    `read_series(path)` -> (T, C, H, W) in the stored dtype. Only segmentation is supported
    for now (a mask per series, as PASTIS has).
    """

    TEMPORAL: ClassVar[bool] = True
    REFERENCE_DATE: ClassVar[dt.date] = dt.date(1970, 1, 1)

    def __init__(self, root: str | os.PathLike, df: pd.DataFrame | None = None,
                 split: str = "all", *args: Any, **kwargs: Any) -> None:
        super().__init__(root, df, split, *args, **kwargs)
        dates = [parse_dates(value) for value in self.df["dates"]]
        # Padded to the whole df's longest series: every split (and shard) has one shape.
        self.max_dates = max((len(d) for d in dates), default=0)
        by_row = dict(zip(self.df.index, dates, strict=True))
        self._days = [days_since(by_row[i], self.REFERENCE_DATE) for i in self._df_idx]

    @classmethod
    def validate_df(cls, df: pd.DataFrame, root: Path, check_files: bool = True) -> None:
        super().validate_df(df, root, check_files)
        if "dates" not in df.columns:
            raise DataError(f"{cls.NAME} df lacks the 'dates' column; a temporal df lists each "
                            f"sample's acquisition dates (ISO, joined by {DATE_SEPARATOR!r}).")
        for row, value in df["dates"].items():
            dates = parse_dates(value)
            if dates != sorted(dates):
                raise DataError(f"{cls.NAME} df row {row}: dates {value!r} are not in time "
                                "order; list them as the files store the images.")

    @classmethod
    def standardiser(cls, means: Sequence[float], std_devs: Sequence[float]) -> Callable:
        return SeriesNormalize(means, std_devs, cls.SCALE)

    @classmethod
    def read_series(cls, path: str | os.PathLike) -> np.ndarray:
        """One sample's stored images, (T, C, H, W): each time series dataset reads its own
        files (PASTIS-R's .npy series, for one)."""
        raise NotImplementedError(f"{cls.__name__} must define read_series(path), the reader "
                                  "of its stored (T, C, H, W) series")

    @classmethod
    def read_image(cls, path: str | os.PathLike) -> np.ndarray:
        """The stored (T, C, H, W) series, its band count checked."""
        images = cls.read_series(path)
        if images.ndim != 4 or images.shape[1] != len(cls.BANDS):
            raise ImageReadError(f"{path} holds an array of shape {images.shape}; {cls.NAME} "
                                 f"series are (dates, {len(cls.BANDS)} bands, height, width).")
        return images

    def read_raw(self, index: int) -> tuple[TimeSeries, Any, int]:
        """The stored sample: (padded TimeSeries, mask array, df_idx)."""
        path = self._image_paths[index]
        images = self.read_image(path)
        days = self._days[index]
        if images.shape[0] != len(days):
            raise ImageReadError(f"{path} holds {images.shape[0]} dates but the index lists "
                                 f"{len(days)}; the file and its metadata disagree.")
        mask = self.read_mask(self._targets[index])
        return pad_series(images, days, self.max_dates), mask, self._df_idx[index]
