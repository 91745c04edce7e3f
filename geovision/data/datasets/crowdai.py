"""CrowdAI Mapping Challenge: building footprints on 300 x 300 px RGB satellite tiles.

Layout of the published archives (train.tar.gz, val.tar.gz) after extraction:

    <root>/train/images/<12-digit image id>.jpg       300 x 300 RGB JPEG
    <root>/train/annotation.json                      COCO format, one category: id 100
    <root>/train/annotation-small.json                a published subset (same format)
    <root>/val/images/...  <root>/val/annotation.json  <root>/val/annotation-small.json
    <root>/geovision_masks/<dataset>/{train,val}/<id>.png   rendered here: 0 / 1 building

The challenge's test images were never labelled and are not used. The masks are rendered
once from the polygons, as for COCO (geovision.data.datasets.coco).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar

import pandas as pd

from geovision.data.datasets.coco import (
    MASKS_DIR,
    CocoImage,
    mask_name,
    read_annotations,
    render_masks,
    rendered_df,
    semantic_mask,
)
from geovision.data.datasets.common import (
    IMAGENET_MEANS,
    IMAGENET_STD_DEVS,
    RGB_BANDS,
    ManualDataset,
    RgbImages,
)
from geovision.data.splits import SplitSettings

BUILDING_CATEGORY_ID = 100
SPLITS = (("train", "train"), ("val", "test"))


class CrowdAIMapping(RgbImages, ManualDataset):
    """Binary building segmentation (background, building) over the CrowdAI tiles.

    Split: official. The published val set is the test split (the challenge's test labels
    were never released); val is `val_split` of the published train set, drawn with the seed
    (`test_split` is unused). The mask is the union of the image's building polygons.
    """

    NAME = "crowdai_mapping"
    TASK = "segmentation"
    CLASS_NAMES = ("background", "building")
    BANDS = RGB_BANDS
    # Not published; ImageNet statistics until computed on the train split (see Inria).
    MEANS = IMAGENET_MEANS
    STD_DEVS = IMAGENET_STD_DEVS
    ANNOTATION_FILE: ClassVar[str] = "annotation.json"
    MANUAL_LAYOUTS = (("train/annotation.json", "val/annotation.json"),)
    MANUAL_INSTRUCTIONS = (
        "Log in at https://www.aicrowd.com/challenges/mapping-challenge, download train.tar.gz "
        "and val.tar.gz from the dataset page (no checksums are published) and extract both "
        "into {root}, so that {root}/train/annotation.json and {root}/train/images/ exist.")

    @classmethod
    def download_and_extract(cls, root: str | os.PathLike) -> Path:
        """Check the manual download is in place, then render the masks (once)."""
        root = super().download_and_extract(root)
        for folder, _ in SPLITS:
            cls.prepare_split(root, folder)
        return root

    @classmethod
    def prepare_split(cls, root: Path, folder: str) -> list[CocoImage]:
        """The split's images, their masks rendered where missing."""
        path = Path(root) / folder / cls.ANNOTATION_FILE
        if not path.is_file():
            raise cls.missing_data_error(Path(root), path)
        images, annotations, categories = read_annotations(path, cls.NAME)
        if categories and set(categories) != {BUILDING_CATEGORY_ID}:
            raise ValueError(f"{cls.NAME}: {path} has categories {sorted(categories)}; the "
                             f"mapping challenge has the single category "
                             f"{BUILDING_CATEGORY_ID} (building).")
        class_of = {BUILDING_CATEGORY_ID: 1}
        render_masks(images, annotations,
                     lambda image, anns: semantic_mask(anns, image.height, image.width, class_of,
                                                       crowd="union"),
                     Path(root) / MASKS_DIR / cls.NAME / folder, f"{cls.NAME} {folder} masks")
        return images

    @classmethod
    def segmentation_df(cls, root: Path, splits: SplitSettings) -> pd.DataFrame:
        rows = []
        for folder, official in SPLITS:
            for image in cls.prepare_split(Path(root), folder):
                rows.append((f"{folder}/images/{image.file_name}",
                             f"{MASKS_DIR}/{cls.NAME}/{folder}/{mask_name(image)}", official))
        return rendered_df(Path(root), rows, splits.val_split, splits.random_seed, cls.NAME)


class CrowdAIMappingSmall(CrowdAIMapping):
    """The same tiles through the published annotation-small.json subsets."""

    NAME = "crowdai_mapping_small"
    ANNOTATION_FILE = "annotation-small.json"
    MANUAL_LAYOUTS = (("train/annotation-small.json", "val/annotation-small.json"),)
