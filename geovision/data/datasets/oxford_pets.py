"""The Oxford-IIIT Pet dataset: 37 cat and dog breeds, with trimap segmentations.

Layout after extraction:

    <root>/images/<Breed>_<n>.jpg                 (capitalised breed = cat; a few .mat files)
    <root>/annotations/{list,trainval,test}.txt   lines "<Breed>_<n> class species breed_id",
                                                  class 1..37, species 1 cat / 2 dog
    <root>/annotations/trimaps/<Breed>_<n>.png    1 pet, 2 background, 3 border
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from geovision.data.datasets.common import (
    IMAGENET_MEANS,
    IMAGENET_STD_DEVS,
    RGB_BANDS,
    DownloadedDataset,
    RgbImages,
    classification_frame,
    map_codes,
    read_lines,
    require_files,
    snake_case,
)
from geovision.data.download import Resource
from geovision.data.splits import SplitSettings, carve_val
from geovision.errors import DataError

# Breeds in class-id order (1..37), spelt in snake_case.
BREEDS = (
    "abyssinian", "american_bulldog", "american_pit_bull_terrier", "basset_hound", "beagle",
    "bengal", "birman", "bombay", "boxer", "british_shorthair", "chihuahua", "egyptian_mau",
    "english_cocker_spaniel", "english_setter", "german_shorthaired", "great_pyrenees",
    "havanese", "japanese_chin", "keeshond", "leonberger", "maine_coon", "miniature_pinscher",
    "newfoundland", "persian", "pomeranian", "pug", "ragdoll", "russian_blue", "saint_bernard",
    "samoyed", "scottish_terrier", "shiba_inu", "siamese", "sphynx",
    "staffordshire_bull_terrier", "wheaten_terrier", "yorkshire_terrier",
)
TRIMAP_CLASSES = ("background", "pet", "border")
# Trimap value -> class index in TRIMAP_CLASSES (background first, as in other masks here).
TRIMAP_TO_INDEX = {1: 1, 2: 0, 3: 2}
URL = "https://www.robots.ox.ac.uk/~vgg/data/pets/data/"
# md5s as published alongside torchvision's OxfordIIITPet dataset (not re-derived here).
RESOURCES = (
    Resource(URL + "images.tar.gz", "images.tar.gz", md5="5c4f3ee8e5d25df40f4fd59a7f44e54c"),
    Resource(URL + "annotations.tar.gz", "annotations.tar.gz",
             md5="95a8c909bbe2e81eed6a22bccdf3f68f"),
)


def official_samples(root: Path, name: str) -> pd.DataFrame:
    """(id, breed, split) for every line of trainval.txt (train) and test.txt (test), sorted by id.

    The breed comes from the class id and must agree with the breed in the image id.
    """
    rows = []
    for list_name, split in (("trainval", "train"), ("test", "test")):
        for line in read_lines(root / "annotations" / f"{list_name}.txt", f"{name} split list"):
            sample_id, class_id, *_ = line.split()
            breed = BREEDS[int(class_id) - 1]
            if snake_case(sample_id.rsplit("_", 1)[0]) != breed:
                raise DataError(f"{name}: annotations/{list_name}.txt line {line!r} gives class "
                                f"{class_id} ({breed}), which is not the breed in its id.")
            rows.append((sample_id, breed, split))
    return pd.DataFrame(rows, columns=["id", "breed", "official"]).sort_values(
        "id", kind="stable").reset_index(drop=True)


class _Pets(RgbImages, DownloadedDataset):
    BANDS = RGB_BANDS
    MEANS = IMAGENET_MEANS  # published ImageNet statistics: pet photos of the same kind
    STD_DEVS = IMAGENET_STD_DEVS
    RESOURCES = RESOURCES


class OxfordPets(_Pets):
    """Breed classification (37 classes).

    Split: official. trainval.txt is train and test.txt is test; val is `val_split` of
    trainval, stratified by breed with the seed (`test_split` is unused).
    """

    NAME = "oxford_pets"
    TASK = "classification"
    CLASS_NAMES = BREEDS

    @classmethod
    def classification_df(cls, root: Path, splits: SplitSettings) -> pd.DataFrame:
        samples = official_samples(Path(root), cls.NAME)
        paths = ("images/" + samples["id"] + ".jpg").tolist()
        require_files(Path(root), paths, cls.NAME)
        split = carve_val(samples["official"], splits.val_split, splits.random_seed,
                          labels=samples["breed"])
        return classification_frame(paths, samples["breed"].tolist(), BREEDS, split, cls.NAME)


class OxfordPetsSegmentation(_Pets):
    """Pet / background / border segmentation from the trimaps.

    Split: official, as for breed classification (val stratified by breed).
    """

    NAME = "oxford_pets_segmentation"
    TASK = "segmentation"
    CLASS_NAMES = TRIMAP_CLASSES

    @classmethod
    def segmentation_df(cls, root: Path, splits: SplitSettings) -> pd.DataFrame:
        samples = official_samples(Path(root), cls.NAME)
        df = pd.DataFrame({
            "image_path": "images/" + samples["id"] + ".jpg",
            "mask_path": "annotations/trimaps/" + samples["id"] + ".png",
            "split": carve_val(samples["official"], splits.val_split, splits.random_seed,
                               labels=samples["breed"]),
        })
        require_files(Path(root), [*df["image_path"], *df["mask_path"]], cls.NAME)
        return df

    @classmethod
    def decode_mask(cls, stored: np.ndarray, source: str = "mask") -> np.ndarray:
        """Trimap values 1 pet, 2 background, 3 border -> indices into TRIMAP_CLASSES."""
        return map_codes(super().decode_mask(stored, source), TRIMAP_TO_INDEX, source,
                         "trimap values 1 (pet), 2 (background) and 3 (border)")
