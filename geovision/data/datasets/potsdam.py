"""ISPRS Potsdam 2D semantic labeling: six land-cover classes on 5 cm true orthophotos.

Layout after unzipping 4_Ortho_RGBIR.zip and 5_Labels_all.zip into the root:

    <root>/4_Ortho_RGBIR/top_potsdam_<X>_<Y>_RGBIR.tif   R, G, B, IR uint8, 6000 x 6000
    <root>/5_Labels_all/top_potsdam_<X>_<Y>_label.tif    RGB colour-coded classes
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from geovision.data.datasets.common import (
    IMAGENET_MEANS,
    IMAGENET_STD_DEVS,
    ManualDataset,
    map_codes,
)
from geovision.data.image_io import ImageReadError
from geovision.data.splits import SplitSettings, carve_val

IMAGES = "4_Ortho_RGBIR"
LABELS = "5_Labels_all"
# The benchmark's fixed tile lists: 24 labelled training tiles and 14 test tiles.
TRAIN_TILES = ("2_10", "2_11", "2_12", "3_10", "3_11", "3_12", "4_10", "4_11", "4_12", "5_10",
               "5_11", "5_12", "6_7", "6_8", "6_9", "6_10", "6_11", "6_12", "7_7", "7_8", "7_9",
               "7_10", "7_11", "7_12")
TEST_TILES = ("2_13", "2_14", "3_13", "3_14", "4_13", "4_14", "4_15", "5_13", "5_14", "5_15",
              "6_13", "6_14", "6_15", "7_13")
CLASS_NAMES = ("impervious_surfaces", "building", "low_vegetation", "tree", "car", "clutter")
COLOURS = {  # label colour -> class index
    (255, 255, 255): 0, (0, 0, 255): 1, (0, 255, 255): 2, (0, 255, 0): 3, (255, 255, 0): 4,
    (255, 0, 0): 5,
}
IGNORE = 255
# Black marks the eroded class boundaries in the "noBoundary" label variant: ignored.
BOUNDARY = (0, 0, 0)


def colour_code(rgb: np.ndarray) -> np.ndarray:
    """(3, H, W) colours -> (H, W) codes 0..7, one bit per channel thresholded at 128, so
    near-pure colours (re-encoded or resampled copies) keep their class."""
    bits = (rgb >= 128).astype(np.uint8)
    return (bits[0] << 2) | (bits[1] << 1) | bits[2]


CODE_TO_INDEX = {int(colour_code(np.array(c, np.uint8).reshape(3, 1, 1))[0, 0]): i
                 for c, i in [*COLOURS.items(), (BOUNDARY, IGNORE)]}


class Potsdam(ManualDataset):
    """Six-class segmentation of the 38 labelled Potsdam tiles (R, G, B, IR).

    Split: official tile lists (24 train, 14 test); val is `val_split` of the training tiles,
    drawn as whole tiles with the seed (`test_split` is unused). A 6000 px tile is the spatial
    block: chips of one tile never straddle two splits.
    """

    NAME = "potsdam"
    TASK = "segmentation"
    CLASS_NAMES = CLASS_NAMES
    IGNORE_INDEX = IGNORE
    BANDS = ("red", "green", "blue", "nir")
    # Not published; compute with geovision.data.statistics.means_and_std_devs on the train
    # split and record here. Until then: ImageNet statistics for R, G, B (the default matching
    # ImageNet-pretrained weights) and, for IR, which has no such counterpart, 0.5 / 0.25, which
    # centres a uint8 band on its range.
    MEANS = (*IMAGENET_MEANS, 0.5)
    STD_DEVS = (*IMAGENET_STD_DEVS, 0.25)
    MANUAL_LAYOUTS = ((f"{IMAGES}/top_potsdam_2_10_RGBIR.tif",
                       f"{LABELS}/top_potsdam_2_10_label.tif"),)
    MANUAL_INSTRUCTIONS = (
        "Request the data through the ISPRS benchmark form "
        "(https://www.isprs.org/education/benchmarks/UrbanSemLab/default.aspx), download "
        "4_Ortho_RGBIR.zip and 5_Labels_all.zip, and unzip them into {root} so that "
        "{root}/4_Ortho_RGBIR/top_potsdam_2_10_RGBIR.tif and "
        "{root}/5_Labels_all/top_potsdam_2_10_label.tif exist.")

    @classmethod
    def segmentation_df(cls, root: Path, splits: SplitSettings) -> pd.DataFrame:
        tiles = sorted(TRAIN_TILES + TEST_TILES)
        df = pd.DataFrame({
            "image_path": [f"{IMAGES}/top_potsdam_{t}_RGBIR.tif" for t in tiles],
            "mask_path": [f"{LABELS}/top_potsdam_{t}_label.tif" for t in tiles],
        })
        for path in (*df["image_path"], *df["mask_path"]):
            if not (Path(root) / path).is_file():
                raise cls.missing_data_error(Path(root), Path(root) / path)
        official = ["test" if t in TEST_TILES else "train" for t in tiles]
        df["split"] = carve_val(official, splits.val_split, splits.random_seed, groups=tiles)
        return df

    @classmethod
    def decode_mask(cls, stored: np.ndarray, source: str = "mask") -> np.ndarray:
        """Colour-coded label -> class indices; black (eroded boundary) -> IGNORE_INDEX."""
        if stored.shape[0] != 3:
            raise ImageReadError(f"Label {source} has {stored.shape[0]} bands; Potsdam labels "
                                 "are RGB colour codes.")
        return map_codes(colour_code(stored), CODE_TO_INDEX, source,
                         "the six Potsdam label colours or black boundaries (a code is the R, G, "
                         "B bits of a colour, e.g. 5 = magenta)")
