"""Inria Aerial Image Labeling: building footprints on 0.3 m orthophotos of ten cities.

Layout after extraction (only the training cities have public labels, so only they are used):

    <root>/AerialImageDataset/train/images/<city><n>.tif   RGB GeoTIFF 5000 x 5000, n = 1..36
    <root>/AerialImageDataset/train/gt/<city><n>.tif       1 band, 0 / 255 (255 = building)
    <root>/AerialImageDataset/test/images/<city><n>.tif    other cities, no labels (unused)
"""

from __future__ import annotations

import re
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
from geovision.data.splits import SplitSettings, carve_val
from geovision.errors import DataError

TRAIN = "AerialImageDataset/train"
CITIES = ("austin", "chicago", "kitsap", "tyrol-w", "vienna")
HELD_OUT_TILES = range(1, 6)  # tiles 1-5 of each city: the customary held-out set
TILE_NAME = re.compile(r"^(?P<city>[a-z-]+?)(?P<number>\d+)\.tif$")


class Inria(ManualDataset):
    """Building segmentation on the five labelled Inria cities (180 tiles).

    Split: spatial, by whole tiles. Test is tiles 1-5 of every city, the held-out set
    published results use (the official test cities have no public labels). Val is
    `val_split` of the remaining tiles, drawn per city with the seed, so every city is seen in
    training and validation (`test_split` is unused). A 5000 px tile is the spatial block:
    chips cut from one tile never straddle two splits.
    """

    NAME = "inria"
    TASK = "segmentation"
    CLASS_NAMES = ("background", "building")
    BANDS = RGB_BANDS
    # Not published; compute with geovision.data.statistics.means_and_std_devs on the train
    # split and record here. Until then: ImageNet statistics, the default for RGB imagery that
    # matches ImageNet-pretrained weights.
    MEANS = IMAGENET_MEANS
    STD_DEVS = IMAGENET_STD_DEVS
    MANUAL_LAYOUTS = ((f"{TRAIN}/images/austin1.tif", f"{TRAIN}/gt/austin1.tif"),)
    # Archive names as listed on the download page at the time of writing.
    MANUAL_INSTRUCTIONS = (
        "Register at https://project.inria.fr/aerialimagelabeling/ to receive the download "
        "links, download the archive parts aerialimagelabeling.7z.001 to .005, extract them "
        "(7z x aerialimagelabeling.7z.001), unzip the NEW2-AerialImageDataset.zip this gives, "
        "and move its AerialImageDataset folder into {root}, so that "
        "{root}/AerialImageDataset/train/images/austin1.tif and "
        "{root}/AerialImageDataset/train/gt/austin1.tif exist.")

    @classmethod
    def segmentation_df(cls, root: Path, splits: SplitSettings) -> pd.DataFrame:
        images = Path(root) / TRAIN / "images"
        if not images.is_dir():
            raise cls.missing_data_error(Path(root), images)
        rows = []
        for path in sorted(images.glob("*.tif")):
            match = TILE_NAME.match(path.name)
            if match is None or match["city"] not in CITIES:
                raise DataError(f"{cls.NAME}: {path} is not named <city><n>.tif for a training "
                                f"city {CITIES}.")
            mask = Path(root) / TRAIN / "gt" / path.name
            if not mask.is_file():
                raise cls.missing_data_error(Path(root), mask)
            rows.append((f"{TRAIN}/images/{path.name}", f"{TRAIN}/gt/{path.name}",
                         match["city"], int(match["number"])))
        tiles = pd.DataFrame(rows, columns=["image_path", "mask_path", "city", "number"])
        official = np.where(tiles["number"].isin(HELD_OUT_TILES), "test", "train")
        return pd.DataFrame({
            "image_path": tiles["image_path"],
            "mask_path": tiles["mask_path"],
            "split": carve_val(official, splits.val_split, splits.random_seed, labels=tiles["city"],
                               groups=tiles["image_path"]),
        })

    @classmethod
    def decode_mask(cls, stored: np.ndarray, source: str = "mask") -> np.ndarray:
        """0 / 255 ground truth -> 0 background / 1 building."""
        return decode_binary_mask(stored, source)
