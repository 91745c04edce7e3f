"""Functional Map of the World (fMoW-RGB): satellite views of 62 kinds of facility.

Layout (as published in the fmow-rgb bucket):

    <root>/{train,val}/<category>/<category>_<id>/<category>_<id>_<k>_rgb.jpg   one view
    <root>/{train,val}/<category>/<category>_<id>/<category>_<id>_<k>_rgb.json  its metadata
        (bounding_boxes [x, y, w, h], gsd, utm, timestamp, cloud_cover, angles)

A `<category>_<id>` folder is one location seen at several times (k = 0, 1, ...).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from geovision.data.datasets.common import (
    IMAGENET_MEANS,
    IMAGENET_STD_DEVS,
    RGB_BANDS,
    ManualDataset,
    RgbImages,
    classification_frame,
    snake_case,
)
from geovision.data.splits import SplitSettings, carve_val
from geovision.errors import DataError

# The published category folder names, in sorted order (the label order).
CATEGORIES = (
    "airport", "airport_hangar", "airport_terminal", "amusement_park", "aquaculture",
    "archaeological_site", "barn", "border_checkpoint", "burial_site", "car_dealership",
    "construction_site", "crop_field", "dam", "debris_or_rubble", "educational_institution",
    "electric_substation", "factory_or_powerplant", "fire_station", "flooded_road", "fountain",
    "gas_station", "golf_course", "ground_transportation_station", "helipad", "hospital",
    "impoverished_settlement", "interchange", "lake_or_pond", "lighthouse", "military_facility",
    "multi-unit_residential", "nuclear_powerplant", "office_building", "oil_or_gas_facility",
    "park", "parking_lot_or_garage", "place_of_worship", "police_station", "port", "prison",
    "race_track", "railway_bridge", "recreational_facility", "road_bridge", "runway",
    "shipyard", "shopping_mall", "single-unit_residential", "smokestack", "solar_farm",
    "space_facility", "stadium", "storage_tank", "surface_mine", "swimming_pool", "toll_booth",
    "tower", "tunnel_opening", "waste_disposal", "water_treatment_facility", "wind_farm", "zoo",
)
CLASS_NAMES = tuple(snake_case(c) for c in CATEGORIES)


class FMoW(RgbImages, ManualDataset):
    """fMoW-RGB category classification, one sample per view (the whole image file).

    Split: official folders, grouped by location. The published val folder is the test split
    (the set published fMoW-RGB results report; the test folder's labels came out separately).
    Val is `val_split` of the train locations, drawn per category with the seed, every view of
    a location going to the same split: views of one place at different times are near
    duplicates and must not straddle train and val (`test_split` is unused).
    """

    NAME = "fmow"
    TASK = "classification"
    CLASS_NAMES = CLASS_NAMES
    BANDS = RGB_BANDS
    # Not published; compute with geovision.data.statistics.means_and_std_devs on the train
    # split and record here. Until then: ImageNet statistics, the default for RGB imagery that
    # matches ImageNet-pretrained weights.
    MEANS = IMAGENET_MEANS
    STD_DEVS = IMAGENET_STD_DEVS
    MANUAL_LAYOUTS = (("train/airport", "val/airport"),)
    # The bucket is public; the AWS CLI fetches it without credentials.
    MANUAL_INSTRUCTIONS = (
        "Copy the train and val folders of fMoW-RGB from the public bucket with the AWS CLI: "
        "aws s3 cp --recursive --no-sign-request "
        "s3://spacenet-dataset/Hosted-Datasets/fmow/fmow-rgb/train {root}/train (and the same "
        "for val), so that {root}/train/airport and {root}/val/airport exist.")

    @classmethod
    def classification_df(cls, root: Path, splits: SplitSettings) -> pd.DataFrame:
        root = Path(root)
        rows = []
        for folder, split in (("train", "train"), ("val", "test")):
            split_dir = root / folder
            if not split_dir.is_dir():
                raise cls.missing_data_error(root, split_dir)
            for category_dir in sorted(p for p in split_dir.iterdir() if p.is_dir()):
                if category_dir.name not in CATEGORIES:
                    raise DataError(f"{cls.NAME}: {category_dir} is not an fMoW category.")
                for image in sorted(category_dir.glob("*/*_rgb.jpg")):
                    rows.append((image.relative_to(root).as_posix(),
                                 snake_case(category_dir.name), split,
                                 f"{folder}/{image.parent.name}"))
        df = pd.DataFrame(rows, columns=["image_path", "label_str", "official", "location"])
        split = carve_val(df["official"], splits.val_split, splits.random_seed,
                          labels=df["label_str"], groups=df["location"])
        return classification_frame(df["image_path"], df["label_str"], CLASS_NAMES, split,
                                    cls.NAME)
