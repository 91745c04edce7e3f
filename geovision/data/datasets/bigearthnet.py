"""BigEarthNet-S2 v1.0: 590,326 Sentinel-2 patches with multi-label CORINE land cover (43
classes).

Layout after extraction, plus the published split lists beside it:

    <root>/BigEarthNet-v1.0/<patch>/<patch>_<band>.tif   one GeoTIFF per band: 120 x 120 px
                                                         (10 m), 60 x 60 (20 m), 20 x 20 (60 m)
    <root>/BigEarthNet-v1.0/<patch>/<patch>_labels_metadata.json   {"labels": [names], ...}
    <root>/bigearthnet-{train,val,test}.csv   one patch per line (first column: the S2 patch)
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from geovision.data.base import LABEL_SEPARATOR
from geovision.data.datasets.common import DownloadedDataset, class_index, read_lines, snake_case
from geovision.data.download import Resource
from geovision.data.image_io import ImageReadError, open_pixels
from geovision.data.splits import SplitSettings
from geovision.errors import MissingDataError

FOLDER = "BigEarthNet-v1.0"
# Bands in spectral order (there is no B10 in the L2A product).
BANDS = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12")
SIZE = 120  # the 10 m grid every band is resampled to
FIRST_BAND_SUFFIX = "_B01.tif"
# The 43 CORINE Land Cover level-3 names used in the label files, in CLC code order.
CLC_NAMES = (
    "Continuous urban fabric", "Discontinuous urban fabric", "Industrial or commercial units",
    "Road and rail networks and associated land", "Port areas", "Airports",
    "Mineral extraction sites", "Dump sites", "Construction sites", "Green urban areas",
    "Sport and leisure facilities", "Non-irrigated arable land", "Permanently irrigated land",
    "Rice fields", "Vineyards", "Fruit trees and berry plantations", "Olive groves", "Pastures",
    "Annual crops associated with permanent crops", "Complex cultivation patterns",
    "Land principally occupied by agriculture, with significant areas of natural vegetation",
    "Agro-forestry areas", "Broad-leaved forest", "Coniferous forest", "Mixed forest",
    "Natural grassland", "Moors and heathland", "Sclerophyllous vegetation",
    "Transitional woodland/shrub", "Beaches, dunes, sands", "Bare rock",
    "Sparsely vegetated areas", "Burnt areas", "Inland marshes", "Peatbogs", "Salt marshes",
    "Salines", "Intertidal flats", "Water courses", "Water bodies", "Coastal lagoons",
    "Estuaries", "Sea and ocean",
)
CLASS_NAMES = tuple(snake_case(name) for name in CLC_NAMES)
# Per-band mean and standard deviation in stored units (reflectance x 10000), as published
# by the BigEarthNet authors with their reference models (bigearthnet-models, BAND_STATS).
MEANS_DN = (340.76769064, 429.9430203, 614.21682446, 590.23569706, 950.68368468,
            1792.46290469, 2075.46795189, 2218.94553375, 2266.46036911, 2246.0605464,
            1594.42694882, 1009.32729131)
STD_DEVS_DN = (554.81258967, 572.41639287, 582.87945694, 675.88746967, 729.89827633,
               1096.01480586, 1273.45393088, 1365.45589904, 1356.13789355, 1302.3292881,
               1079.19066363, 818.86747235)
REFLECTANCE_SCALE = 10000.0
SPLITS_URL = ("https://git.tu-berlin.de/rsim/BigEarthNet-MM_19-classes_models/-/raw/"
              "9a5be07346ab0884b2d9517475c27ef9db9b5104/splits/")


class BigEarthNet(DownloadedDataset):
    """BigEarthNet-S2 v1.0, multi-label over the 43 original classes, 12 bands on one grid.

    Split: official, the published train / val / test lists (which leave out the patches
    covered by seasonal snow, clouds or cloud shadow); `val_split` and `test_split` are
    unused. The target is a 43-long multi-hot vector.

    `image_path` names a patch's B01 file; `read_image` reads all 12 band files beside it and
    resamples the 20 m and 60 m bands bilinearly (rasterio) to the 120 x 120 grid of the 10 m
    bands: reflectance varies smoothly, and bilinear avoids the blocky edges of nearest.
    """

    NAME = "bigearthnet"
    TASK = "multilabel"
    CLASS_NAMES = CLASS_NAMES
    BANDS = BANDS
    SCALE = REFLECTANCE_SCALE
    MEANS = tuple(round(m / REFLECTANCE_SCALE, 8) for m in MEANS_DN)
    STD_DEVS = tuple(round(s / REFLECTANCE_SCALE, 8) for s in STD_DEVS_DN)
    # md5s as published with torchgeo's BigEarthNet dataset; not re-derived here.
    RESOURCES = (
        Resource("https://bigearth.net/downloads/BigEarthNet-S2-v1.0.tar.gz",
                 "BigEarthNet-S2-v1.0.tar.gz", md5="5a64e9ce38deb036a435a7b59494924c"),
        Resource(SPLITS_URL + "train.csv?inline=false", "bigearthnet-train.csv",
                 md5="623e501b38ab7b12fe44f0083c00986d"),
        Resource(SPLITS_URL + "val.csv?inline=false", "bigearthnet-val.csv",
                 md5="22efe8ed9cbd71fa10742ff7df2b7978"),
        Resource(SPLITS_URL + "test.csv?inline=false", "bigearthnet-test.csv",
                 md5="697fb90677e30571b9ac7699b7e5b432"),
    )

    @classmethod
    def multilabel_df(cls, root: Path, splits: SplitSettings) -> pd.DataFrame:
        root = Path(root)
        rows = [(line.split(",")[0].strip(), split)
                for split in ("train", "val", "test")
                for line in read_lines(root / f"bigearthnet-{split}.csv",
                                       f"{cls.NAME} split list")]
        patches = pd.DataFrame(rows, columns=["patch", "split"]).sort_values(
            "patch", kind="stable").reset_index(drop=True)
        labels = [cls.patch_labels(root, patch)
                  for patch in tqdm(patches["patch"], desc=f"{cls.NAME} labels", unit="patch",
                                    leave=True, disable=len(patches) < 10_000)]
        return pd.DataFrame({
            "image_path": [f"{FOLDER}/{p}/{p}{FIRST_BAND_SUFFIX}" for p in patches["patch"]],
            "label_str": labels,
            "split": patches["split"],
        })

    @classmethod
    def patch_labels(cls, root: Path, patch: str) -> str:
        """The patch's label names, in CLASS_NAMES order, joined by "|"."""
        path = root / FOLDER / patch / f"{patch}_labels_metadata.json"
        if not path.is_file():
            raise MissingDataError(f"{cls.NAME}: {path} not found; the split lists name patch "
                                   f"{patch}. Run download_and_extract(root) again.")
        names = [snake_case(n) for n in json.loads(path.read_text())["labels"]]
        index = sorted(set(class_index(names, CLASS_NAMES, f"{cls.NAME} {path}").tolist()))
        return LABEL_SEPARATOR.join(CLASS_NAMES[i] for i in index)

    @classmethod
    def read_image(cls, path: str | os.PathLike) -> np.ndarray:
        """The patch's 12 bands as (12, 120, 120) uint16, resampled bilinearly to 10 m."""
        import rasterio
        from rasterio.enums import Resampling

        path = str(path)
        if not path.endswith(FIRST_BAND_SUFFIX):
            raise ImageReadError(f"{path} is not a BigEarthNet B01 band file "
                                 f"(<patch>{FIRST_BAND_SUFFIX}).")
        prefix = path[: -len(FIRST_BAND_SUFFIX)]
        out = np.empty((len(BANDS), SIZE, SIZE), dtype=np.uint16)
        # (image_io sets GDAL_DISABLE_READDIR_ON_OPEN for the process: no folder listing.)
        for i, band in enumerate(BANDS):
            band_path = f"{prefix}_{band}.tif"
            try:
                with open_pixels(band_path) as src:
                    out[i] = src.read(1, out_shape=(SIZE, SIZE), resampling=Resampling.bilinear)
            except rasterio.RasterioIOError as exc:
                raise ImageReadError(f"Cannot read band file {band_path}: {exc}. It is missing "
                                     "or corrupt: extract the patch again.") from exc
        return out
