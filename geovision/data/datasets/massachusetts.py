"""Massachusetts Buildings and Roads (Mnih, 2013): 1500 x 1500 px RGB aerial tiles at 1 m.

Two published layouts are read, whichever is under the root:

    the author's site        <root>/{train,valid,test}/sat/<id>.tiff
                             <root>/{train,valid,test}/map/<id>.tif      1 band, 0 / 255
    the Kaggle mirror        <root>/tiff/{train,val,test}/<id>.tiff
                             <root>/tiff/{train,val,test}_labels/<id>.tif
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from geovision.data.datasets.common import (
    IMAGENET_MEANS,
    IMAGENET_STD_DEVS,
    RGB_BANDS,
    ManualDataset,
    decode_binary_mask,
)
from geovision.data.splits import SplitSettings

# (image folder, mask folder, split) per published layout.
SITE_LAYOUT = (("train/sat", "train/map", "train"), ("valid/sat", "valid/map", "val"),
               ("test/sat", "test/map", "test"))
MIRROR_LAYOUT = (("tiff/train", "tiff/train_labels", "train"),
                 ("tiff/val", "tiff/val_labels", "val"),
                 ("tiff/test", "tiff/test_labels", "test"))
LAYOUTS = (SITE_LAYOUT, MIRROR_LAYOUT)


def instructions(site_folder: str, kaggle_name: str) -> str:
    """Where to get one of the two datasets and where to put it ({root} left to fill in)."""
    return (f"Download the tiles from https://www.cs.toronto.edu/~vmnih/data/{site_folder}/ and "
            "put its train, valid and test folders (each with sat/ and map/) into {root}, or "
            f"unzip the Kaggle mirror (kaggle datasets download -d balraj98/{kaggle_name}) into "
            "{root} so that {root}/tiff/train and {root}/tiff/train_labels exist.")


class _Massachusetts(ManualDataset):
    """Split: official (the published train / valid / test folders); `val_split` and
    `test_split` are unused. Each tile is a whole 1500 px scene, so the published split is
    already by spatial block: chips of one tile never straddle two splits."""

    TASK = "segmentation"
    BANDS = RGB_BANDS
    # Not published; compute with geovision.data.statistics.means_and_std_devs on the train
    # split and record here. Until then: ImageNet statistics, the default for RGB imagery that
    # matches ImageNet-pretrained weights.
    MEANS = IMAGENET_MEANS
    STD_DEVS = IMAGENET_STD_DEVS
    MANUAL_LAYOUTS = tuple(tuple(folder for image, mask, _ in layout for folder in (image, mask))
                           for layout in LAYOUTS)

    @classmethod
    def segmentation_df(cls, root: Path, splits: SplitSettings) -> pd.DataFrame:
        root = Path(root)
        layout = next((lay for lay in LAYOUTS if (root / lay[0][0]).is_dir()), None)
        if layout is None:
            raise cls.missing_data_error(root, root / SITE_LAYOUT[0][0])
        rows = []
        for image_dir, mask_dir, split in layout:
            if not (root / image_dir).is_dir():
                raise cls.missing_data_error(root, root / image_dir)
            for image in sorted((root / image_dir).glob("*.tiff")):
                mask = f"{mask_dir}/{image.stem}.tif"
                if not (root / mask).is_file():
                    raise cls.missing_data_error(root, root / mask)
                rows.append((f"{image_dir}/{image.name}", mask, split))
        return pd.DataFrame(rows, columns=["image_path", "mask_path", "split"])

    @classmethod
    def decode_mask(cls, stored: np.ndarray, source: str = "mask") -> np.ndarray:
        """0 / 255 map -> 0 background / 1 object."""
        return decode_binary_mask(stored, source)


class MassachusettsBuildings(_Massachusetts):
    """Building segmentation on 151 tiles of the Boston area (137 train, 4 val, 10 test)."""

    NAME = "massachusetts_buildings"
    CLASS_NAMES = ("background", "building")
    MANUAL_INSTRUCTIONS = instructions("mass_buildings", "massachusetts-buildings-dataset")


class MassachusettsRoads(_Massachusetts):
    """Road segmentation on 1171 tiles of Massachusetts (1108 train, 14 val, 49 test)."""

    NAME = "massachusetts_roads"
    CLASS_NAMES = ("background", "road")
    MANUAL_INSTRUCTIONS = instructions("mass_roads", "massachusetts-roads-dataset")
