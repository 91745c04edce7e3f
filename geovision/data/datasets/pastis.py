"""PASTIS-R: 2,433 agricultural patches (128 x 128 px, 10 m) of southern France as Sentinel-2
and Sentinel-1 (ascending, descending) time series, with semantic parcel labels.

Layout of the published archive (PASTIS-R.zip) after extraction:

    <root>/PASTIS-R/DATA_S2/S2_<id>.npy      (T, 10, 128, 128): 38 to 61 dates, bands B2, B3,
                                              B4, B5, B6, B7, B8, B8A, B11, B12
    <root>/PASTIS-R/DATA_S1A/S1A_<id>.npy    (T, 3, 128, 128): ascending orbit, about 70 dates
    <root>/PASTIS-R/DATA_S1D/S1D_<id>.npy    (T, 3, 128, 128): descending orbit
    <root>/PASTIS-R/ANNOTATIONS/TARGET_<id>.npy  (3, 128, 128): channel 0 the semantic class
    <root>/PASTIS-R/metadata.geojson         one feature per patch: ID_PATCH, Fold (1-5),
                                              dates-S2 / dates-S1A / dates-S1D ({index: yyyymmdd})
    (+ INSTANCE_ANNOTATIONS/, ParcelIDs, NORM_*_patch.json: per-fold normalisation)

Classes: 0 background, 1-18 crop types, 19 void (parcels mostly outside the patch), which is
ignored. Split: the official 5-fold protocol, folds 1-3 train, 4 val, 5 test (FOLDS);
`val_split` and `test_split` are unused. Dates count from 2018-09-01, as the authors' loader
counts them.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from geovision.data.datasets.common import DownloadedDataset
from geovision.data.download import Resource
from geovision.data.image_io import ImageReadError
from geovision.data.splits import SplitSettings
from geovision.data.temporal import TemporalDataset, join_dates
from geovision.errors import DataError, MissingDataError

CLASS_NAMES = (
    "background", "meadow", "soft_winter_wheat", "corn", "winter_barley", "winter_rapeseed",
    "spring_barley", "sunflower", "grapevine", "beet", "winter_triticale",
    "winter_durum_wheat", "fruits_vegetables_flowers", "potatoes", "leguminous_fodder",
    "soybeans", "orchard", "mixed_cereal", "sorghum",
)
VOID = 19
S2_BANDS = ("B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B11", "B12")
S1_BANDS = ("vv", "vh", "vv_vh_ratio")
DEFAULT_FOLDS = {"train": (1, 2, 3), "val": (4,), "test": (5,)}
ARCHIVE_FOLDER = "PASTIS-R"
METADATA = "metadata.geojson"


def read_metadata(folder: Path, sensor: str) -> pd.DataFrame:
    """One row per patch: id, fold and the sensor's acquisition dates, sorted by id."""
    path = folder / METADATA
    if not path.is_file():
        raise MissingDataError(f"{path} not found: download PASTIS-R (download_and_extract) "
                               f"or extract PASTIS-R.zip under {folder.parent}.")
    rows = []
    for feature in json.loads(path.read_text())["features"]:
        props = feature["properties"]
        dates = props.get(f"dates-{sensor}")
        if isinstance(dates, str):  # some exports keep the nested dict as JSON text
            dates = json.loads(dates)
        if not dates:
            raise DataError(f"{path}: patch {props.get('ID_PATCH')} has no dates-{sensor}; "
                            "the metadata does not follow PASTIS-R's layout.")
        ordered = [str(dates[k]) for k in sorted(dates, key=int)]
        rows.append((int(props["ID_PATCH"]), int(props["Fold"]),
                     join_dates([dt.datetime.strptime(d, "%Y%m%d").date() for d in ordered])))
    frame = pd.DataFrame(rows, columns=["id", "fold", "dates"])
    bad = sorted(set(frame["fold"]) - {1, 2, 3, 4, 5})
    if bad:
        raise DataError(f"{path}: folds {bad}; PASTIS-R folds are 1 to 5.")
    return frame.sort_values("id", kind="stable").reset_index(drop=True)


def fold_splits(folds: pd.Series, assignment: dict[str, tuple[int, ...]]) -> np.ndarray:
    """Each row's split from its fold."""
    lookup = {fold: split for split, chosen in assignment.items() for fold in chosen}
    missing = sorted(set(folds) - set(lookup))
    if missing:
        raise DataError(f"folds {missing} are in no split of {assignment}.")
    return folds.map(lookup).to_numpy(dtype=object)


class PastisR(DownloadedDataset, TemporalDataset):
    """Semantic segmentation of crop parcels from the Sentinel-2 series (`pastis_r`); the
    `pastis_r_s1a` / `pastis_r_s1d` variants read the Sentinel-1 series of the same patches.

    Images are float series (T, C, H, W) in stored units (S2 reflectance x 10,000), padded to
    the longest series of the df with a mask of real dates. No per-band statistics are
    published outside the data (the archive's NORM files are per fold): MEANS / STD_DEVS are
    None and the statistics asset computes them.
    """

    NAME = "pastis_r"
    TASK = "segmentation"
    CLASS_NAMES = CLASS_NAMES
    IGNORE_INDEX = VOID
    BANDS = S2_BANDS
    SCALE = 10000.0
    MEANS = None
    STD_DEVS = None
    REFERENCE_DATE = dt.date(2018, 9, 1)
    SENSOR: ClassVar[str] = "S2"
    FOLDER: ClassVar[str] = ARCHIVE_FOLDER
    FOLDS: ClassVar[dict[str, tuple[int, ...]]] = DEFAULT_FOLDS
    # As published with torchgeo's PASTIS dataset (not re-derived here).
    RESOURCES = (Resource("https://zenodo.org/records/5735646/files/PASTIS-R.zip?download=1",
                          "PASTIS-R.zip", md5="4887513d6c2d2b07fa935d325bd53e09"),)

    @classmethod
    def segmentation_df(cls, root: Path, splits: SplitSettings) -> pd.DataFrame:
        folder = Path(root) / cls.FOLDER
        meta = read_metadata(folder, cls.SENSOR)
        ids = meta["id"].astype(str)
        frame = pd.DataFrame({
            "image_path": f"{cls.FOLDER}/DATA_{cls.SENSOR}/{cls.SENSOR}_" + ids + ".npy",
            "mask_path": f"{cls.FOLDER}/ANNOTATIONS/TARGET_" + ids + ".npy",
            "split": fold_splits(meta["fold"], cls.FOLDS),
            "dates": meta["dates"],
        })
        return frame.reset_index(drop=True)

    @classmethod
    def read_series(cls, path: str | os.PathLike) -> np.ndarray:
        return _load_npy(path, "series")

    @classmethod
    def read_mask(cls, path: str | os.PathLike) -> np.ndarray:
        """Channel 0 of TARGET_<id>.npy as (H, W) uint8 class indices (19: void)."""
        target = _load_npy(path, "target")
        if target.ndim != 3 or target.shape[0] < 1:
            raise ImageReadError(f"{path} has shape {target.shape}; PASTIS targets are "
                                 "(3, H, W) with the semantic classes in channel 0.")
        semantic = target[0]
        allowed = set(range(len(cls.CLASS_NAMES))) | {cls.IGNORE_INDEX}
        unknown = sorted(set(np.unique(semantic).tolist()) - allowed)
        if unknown:
            raise ImageReadError(f"{path} holds classes {unknown[:10]}; {cls.NAME} has "
                                 f"0..{len(cls.CLASS_NAMES) - 1}"
                                 + ("" if cls.IGNORE_INDEX is None
                                    else f" and {cls.IGNORE_INDEX} (ignored)") + ".")
        return semantic.astype(np.uint8)

    def read_raw(self, index: int) -> tuple[Any, Any, int]:
        series, mask, df_idx = super().read_raw(index)
        if mask.shape != series.images.shape[2:]:
            raise ImageReadError(f"{self._targets[index]} is {mask.shape} but its series is "
                                 f"{series.images.shape[2:]}.")
        return series, mask, df_idx


class PastisRS1A(PastisR):
    """PASTIS-R's Sentinel-1 ascending-orbit series (3 bands, float)."""

    NAME = "pastis_r_s1a"
    BANDS = S1_BANDS
    SCALE = None
    SENSOR = "S1A"


class PastisRS1D(PastisRS1A):
    """PASTIS-R's Sentinel-1 descending-orbit series (3 bands, float)."""

    NAME = "pastis_r_s1d"
    SENSOR = "S1D"


def _load_npy(path: str | os.PathLike, what: str) -> np.ndarray:
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(f"PASTIS {what} file not found: {path}. The extraction is "
                             "incomplete: run download_and_extract(root) again.")
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ImageReadError(f"Cannot read {path}: {exc}. It is corrupt: extract the archive "
                             "again.") from exc
