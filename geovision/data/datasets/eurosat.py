"""EuroSAT: 27,000 Sentinel-2 patches (64 x 64 px, 10 m) in ten land-use classes.

Layouts after extraction, plus the split lists of Neumann et al. (2019) beside them:

    multispectral  <root>/ds/images/remote_sensing/otherDatasets/sentinel_2/tif/<Class>/
                   <Class>_<n>.tif     13-band uint16 GeoTIFF, bands B01..B12 then B8A
    RGB            <root>/2750/<Class>/<Class>_<n>.jpg
    splits         <root>/eurosat-{train,val,test}.txt   one "<Class>_<n>.jpg" per line
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from geovision.data.datasets.common import (
    IMAGENET_MEANS,
    IMAGENET_STD_DEVS,
    RGB_BANDS,
    DownloadedDataset,
    RgbImages,
    classification_frame,
    read_lines,
    require_files,
    snake_case,
)
from geovision.data.download import Resource
from geovision.data.splits import SplitSettings
from geovision.errors import DataError

CLASS_FOLDERS = ("AnnualCrop", "Forest", "HerbaceousVegetation", "Highway", "Industrial",
                 "Pasture", "PermanentCrop", "Residential", "River", "SeaLake")
CLASS_NAMES = ("annual_crop", "forest", "herbaceous_vegetation", "highway", "industrial",
               "pasture", "permanent_crop", "residential", "river", "sea_lake")
# Band order inside the files: B8A is stored last, not after B08.
MS_BANDS = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B09", "B10", "B11", "B12",
            "B8A")
# Per-band mean and standard deviation of the multispectral files in stored units
# (reflectance x 10000), in file band order, as published with torchgeo's EuroSATDataModule.
MS_MEANS_DN = (1354.40546513, 1118.24399958, 1042.92983953, 947.62620298, 1199.47283961,
               1999.79090914, 2369.22292565, 2296.82608323, 732.08340178, 12.11327804,
               1819.01027855, 1118.92391149, 2594.14080798)
MS_STD_DEVS_DN = (245.71762908, 333.00778264, 395.09249139, 593.75055589, 566.4170017,
                  861.18399006, 1086.63139075, 1117.98170791, 404.91978886, 4.77584468,
                  1002.58768311, 761.30323499, 1231.58581042)
REFLECTANCE_SCALE = 10000.0
MIRROR = "https://huggingface.co/datasets/torchgeo/eurosat/resolve/main/"
SPLITS_URL = "https://storage.googleapis.com/remote_sensing_representations/"
# md5s as published with torchgeo's EuroSAT dataset (split lists) and torchvision's (RGB
# archive); not re-derived here. The archives were first published at
# https://madm.dfki.de/files/sentinel/, which no longer serves them.
SPLIT_RESOURCES = (
    Resource(SPLITS_URL + "eurosat-train.txt", "eurosat-train.txt",
             md5="908f142e73d6acdf3f482c5e80d851b1"),
    Resource(SPLITS_URL + "eurosat-val.txt", "eurosat-val.txt",
             md5="95de90f2aa998f70a3b2416bfe0687b4"),
    Resource(SPLITS_URL + "eurosat-test.txt", "eurosat-test.txt",
             md5="7ae5ab94471417b6e315763121e67c5f"),
)


class EuroSAT(DownloadedDataset):
    """EuroSAT multispectral: all 13 Sentinel-2 bands, in the files' order (B8A last).

    Split: official, the published train / val / test lists (60 / 20 / 20); `val_split` and
    `test_split` are unused. Patches are read as stored (uint16) and scaled by 1 / 10000 to
    reflectance before normalisation.
    """

    NAME = "eurosat"
    TASK = "classification"
    CLASS_NAMES = CLASS_NAMES
    BANDS = MS_BANDS
    SCALE = REFLECTANCE_SCALE
    MEANS = tuple(round(m / REFLECTANCE_SCALE, 8) for m in MS_MEANS_DN)
    STD_DEVS = tuple(round(s / REFLECTANCE_SCALE, 8) for s in MS_STD_DEVS_DN)
    FOLDER = "ds/images/remote_sensing/otherDatasets/sentinel_2/tif"
    SUFFIX = ".tif"
    RESOURCES = (Resource(MIRROR + "EuroSATallBands.zip", "EuroSATallBands.zip",
                          md5="5ac12b3b2557aa56e1826e981e8e200e"), *SPLIT_RESOURCES)

    @classmethod
    def classification_df(cls, root: Path, splits: SplitSettings) -> pd.DataFrame:
        rows = []
        for split in ("train", "val", "test"):
            for line in read_lines(Path(root) / f"eurosat-{split}.txt", f"{cls.NAME} split list"):
                stem = Path(line).stem  # the lists name the RGB files: <Class>_<n>.jpg
                folder = stem.rsplit("_", 1)[0]
                rows.append((f"{cls.FOLDER}/{folder}/{stem}{cls.SUFFIX}", folder, split))
        df = pd.DataFrame(rows, columns=["image_path", "folder", "split"]).sort_values(
            "image_path", kind="stable").reset_index(drop=True)
        if df["image_path"].duplicated().any():
            raise DataError(f"{cls.NAME}: the split lists name "
                            f"{df['image_path'][df['image_path'].duplicated()].iloc[0]} twice.")
        require_files(Path(root), df["image_path"], cls.NAME)
        return classification_frame(df["image_path"], df["folder"].map(snake_case), CLASS_NAMES,
                                    df["split"], cls.NAME)


class EuroSATRGB(RgbImages, EuroSAT):
    """EuroSAT RGB: the published 8-bit JPEG rendering of bands B04, B03, B02.

    Split: official, the same lists as the multispectral variant.
    """

    NAME = "eurosat_rgb"
    BANDS = RGB_BANDS
    SCALE = None
    # Not published for the JPEG rendering; compute with
    # geovision.data.statistics.means_and_std_devs on the train split and record here. Until
    # then: ImageNet statistics, the default for RGB imagery that matches ImageNet-pretrained
    # weights.
    MEANS = IMAGENET_MEANS
    STD_DEVS = IMAGENET_STD_DEVS
    FOLDER = "2750"
    SUFFIX = ".jpg"
    RESOURCES = (Resource(MIRROR + "EuroSAT.zip", "EuroSAT.zip",
                          md5="c8fa014336c82ac7804f0398fcb19387"), *SPLIT_RESOURCES)
