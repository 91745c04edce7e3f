"""Imagenette: ten easily told apart ImageNet classes, in three image sizes (fast.ai).

Layout after extraction:

    <root>/imagenette2[-320|-160]/{train,val}/<wnid>/<wnid>_<n>.JPEG
    <root>/imagenette2[-320|-160]/noisy_imagenette.csv   (not needed: the folders are the split)
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
)
from geovision.data.download import Resource
from geovision.data.splits import SplitSettings, carve_val
from geovision.errors import DataError, MissingDataError

# ImageNet WordNet ids in sorted order, which is the label order, and geovision's names.
WNIDS = ("n01440764", "n02102040", "n02979186", "n03000684", "n03028079", "n03394916",
         "n03417042", "n03425413", "n03445777", "n03888605")
CLASS_NAMES = ("tench", "english_springer", "cassette_player", "chain_saw", "church",
               "french_horn", "garbage_truck", "gas_pump", "golf_ball", "parachute")
URL = "https://s3.amazonaws.com/fast-ai-imageclas/"


class Imagenette(RgbImages, DownloadedDataset):
    """Imagenette at full size (imagenette2).

    Split: official. The published val folder is the test split; val is `val_split` of the
    published train folder, stratified by class with the seed (`test_split` is unused).
    """

    NAME = "imagenette"
    TASK = "classification"
    CLASS_NAMES = CLASS_NAMES
    BANDS = RGB_BANDS
    MEANS = IMAGENET_MEANS  # published ImageNet statistics: Imagenette is an ImageNet subset
    STD_DEVS = IMAGENET_STD_DEVS
    FOLDER = "imagenette2"
    # md5 as published alongside torchvision's Imagenette dataset (not re-derived here).
    RESOURCES = (Resource(URL + "imagenette2.tgz", "imagenette2.tgz",
                          md5="fe2fc210e6bb7c5664d602c3cd71e612"),)

    @classmethod
    def classification_df(cls, root: Path, splits: SplitSettings) -> pd.DataFrame:
        base = Path(root) / cls.FOLDER
        paths, labels, official = [], [], []
        for folder, split in (("train", "train"), ("val", "test")):
            split_dir = base / folder
            if not split_dir.is_dir():
                raise MissingDataError(f"{cls.NAME}: {split_dir} not found; run "
                                       f"{cls.__name__}.download_and_extract(root) first.")
            for class_dir in sorted(p for p in split_dir.iterdir() if p.is_dir()):
                if class_dir.name not in WNIDS:
                    raise DataError(f"{cls.NAME}: {class_dir} is not one of the ten Imagenette "
                                    f"WordNet ids {WNIDS}.")
                for image in sorted(class_dir.glob("*.JPEG")):
                    paths.append(image.relative_to(root).as_posix())
                    labels.append(CLASS_NAMES[WNIDS.index(class_dir.name)])
                    official.append(split)
        split = carve_val(official, splits.val_split, splits.random_seed, labels=labels)
        return classification_frame(paths, labels, CLASS_NAMES, split, cls.NAME)


class Imagenette320(Imagenette):
    """Imagenette with the shorter side resized to 320 px (imagenette2-320); same splits."""

    NAME = "imagenette_320"
    FOLDER = "imagenette2-320"
    RESOURCES = (Resource(URL + "imagenette2-320.tgz", "imagenette2-320.tgz",
                          md5="3df6f0d01a2c9592104656642f5e78a3"),)


class Imagenette160(Imagenette):
    """Imagenette with the shorter side resized to 160 px (imagenette2-160); same splits."""

    NAME = "imagenette_160"
    FOLDER = "imagenette2-160"
    RESOURCES = (Resource(URL + "imagenette2-160.tgz", "imagenette2-160.tgz",
                          md5="e793b78cc4c9e9a4ccc0c1155377a412"),)
