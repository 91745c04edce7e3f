"""MS COCO 2017 as semantic segmentation, built from the instance annotations.

Layout after extraction (the three published zips unpack to these folders):

    <root>/train2017/<12-digit image id>.jpg
    <root>/val2017/<12-digit image id>.jpg
    <root>/annotations/instances_{train,val}2017.json      COCO instance annotations
    <root>/geovision_masks/<dataset>/{train,val}2017/<id>.png   rendered here (see below)

COCO ships no mask files: each image's semantic mask is rendered once from its instance
annotations into a single-band PNG of class indices beside the images (`render_masks`), so
that every later step reads masks as files like any other segmentation dataset.

Segmentations come in three encodings, all decoded with pycocotools: a list of polygons
(iscrowd 0), uncompressed RLE (`counts` a list of run lengths) and compressed RLE (`counts` a
string). RLE `size` is [height, width] and the runs go down the columns (column-major).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from tqdm import tqdm

from geovision.data.datasets.common import (
    IMAGENET_MEANS,
    IMAGENET_STD_DEVS,
    RGB_BANDS,
    DownloadedDataset,
    RgbImages,
    snake_case,
)
from geovision.data.datasets.pascal_voc import CLASS_NAMES as VOC_CLASS_NAMES
from geovision.data.download import Resource
from geovision.data.splits import SplitSettings, carve_val
from geovision.io.atomic import atomic_file

IGNORE = 255
MASKS_DIR = "geovision_masks"
# The 80 thing categories of instances_*.json: ids 1..90 with ten ids unused.
COCO_CATEGORIES: tuple[tuple[int, str], ...] = (
    (1, "person"), (2, "bicycle"), (3, "car"), (4, "motorcycle"), (5, "airplane"), (6, "bus"),
    (7, "train"), (8, "truck"), (9, "boat"), (10, "traffic light"), (11, "fire hydrant"),
    (13, "stop sign"), (14, "parking meter"), (15, "bench"), (16, "bird"), (17, "cat"),
    (18, "dog"), (19, "horse"), (20, "sheep"), (21, "cow"), (22, "elephant"), (23, "bear"),
    (24, "zebra"), (25, "giraffe"), (27, "backpack"), (28, "umbrella"), (31, "handbag"),
    (32, "tie"), (33, "suitcase"), (34, "frisbee"), (35, "skis"), (36, "snowboard"),
    (37, "sports ball"), (38, "kite"), (39, "baseball bat"), (40, "baseball glove"),
    (41, "skateboard"), (42, "surfboard"), (43, "tennis racket"), (44, "bottle"),
    (46, "wine glass"), (47, "cup"), (48, "fork"), (49, "knife"), (50, "spoon"), (51, "bowl"),
    (52, "banana"), (53, "apple"), (54, "sandwich"), (55, "orange"), (56, "broccoli"),
    (57, "carrot"), (58, "hot dog"), (59, "pizza"), (60, "donut"), (61, "cake"), (62, "chair"),
    (63, "couch"), (64, "potted plant"), (65, "bed"), (67, "dining table"), (70, "toilet"),
    (72, "tv"), (73, "laptop"), (74, "mouse"), (75, "remote"), (76, "keyboard"),
    (77, "cell phone"), (78, "microwave"), (79, "oven"), (80, "toaster"), (81, "sink"),
    (82, "refrigerator"), (84, "book"), (85, "clock"), (86, "vase"), (87, "scissors"),
    (88, "teddy bear"), (89, "hair drier"), (90, "toothbrush"),
)
# COCO category id of each PASCAL VOC class (index 1..20), as in torchvision's segmentation
# reference (aeroplane = airplane 5, ..., tvmonitor = tv 72).
VOC_CATEGORY_IDS = (5, 2, 16, 9, 44, 6, 3, 17, 62, 21, 67, 18, 19, 4, 1, 64, 20, 63, 7, 72)
# The torchvision segmentation reference keeps a training image only if its kept annotations
# cover more than this many pixels in total (COCO's `area` field).
MIN_TRAIN_AREA = 1000
SPLITS = (("train2017", "train"), ("val2017", "test"))


# ----- decoding ---------------------------------------------------------------------------


def instance_mask(segmentation: Any, height: int, width: int) -> np.ndarray:
    """One annotation's `segmentation` -> (height, width) bool mask.

    Polygon parts with fewer than three points are dropped: pycocotools would read a list
    whose first part has four numbers as a bounding box rather than a polygon.
    """
    from pycocotools import mask as coco_mask

    if isinstance(segmentation, list):
        parts = [[float(v) for v in part] for part in segmentation if len(part) >= 6]
        if not parts:
            return np.zeros((height, width), dtype=bool)
        rle = coco_mask.merge(coco_mask.frPyObjects(parts, height, width))
    elif isinstance(segmentation, Mapping) and "counts" in segmentation:
        if [int(v) for v in segmentation["size"]] != [height, width]:
            raise ValueError(f"RLE size {segmentation['size']} is not the image's [height, "
                             f"width] [{height}, {width}].")
        if isinstance(segmentation["counts"], list):  # uncompressed RLE
            rle = coco_mask.frPyObjects(dict(segmentation), height, width)
        else:
            counts = segmentation["counts"]
            rle = {"size": [height, width],
                   "counts": counts.encode() if isinstance(counts, str) else counts}
    else:
        raise ValueError(f"segmentation {str(segmentation)[:60]!r} is neither a polygon list "
                         "nor an RLE dict with 'counts' and 'size'.")
    return coco_mask.decode(rle).astype(bool)


def semantic_mask(annotations: Sequence[Mapping[str, Any]], height: int, width: int,
                  class_of: Mapping[int, int], crowd: str = "ignore") -> np.ndarray:
    """Instance annotations -> (height, width) uint8 class indices (0 background).

    `class_of` maps category ids to class indices; other categories are left out. Pixels of
    two or more instances become IGNORE (255). Crowd regions (iscrowd 1, one RLE over a group
    of objects and the gaps between them) become IGNORE with `crowd="ignore"`, or a second
    class value merged like any instance with `crowd="union"` (binary datasets, where every
    region is the same class).
    """
    target = np.zeros((height, width), dtype=np.uint8)
    covered = np.zeros((height, width), dtype=np.uint16)
    crowds = np.zeros((height, width), dtype=bool)
    for ann in annotations:
        index = class_of.get(int(ann["category_id"]))
        if index is None:
            continue
        mask = instance_mask(ann["segmentation"], height, width)
        if ann.get("iscrowd", 0) and crowd == "ignore":
            crowds |= mask
            continue
        target[mask] = index
        covered += mask
    if crowd == "union":
        return np.where(covered > 0, target, 0).astype(np.uint8)
    target[covered > 1] = IGNORE
    target[crowds] = IGNORE
    return target


# ----- the annotation file ----------------------------------------------------------------


@dataclass(frozen=True)
class CocoImage:
    id: int
    file_name: str
    height: int
    width: int


def read_annotations(path: Path, name: str) -> tuple[list[CocoImage], dict[int, list[dict]],
                                                     dict[int, str]]:
    """(images sorted by id, annotations by image id, category names by id) of a COCO json."""
    if not path.is_file():
        raise FileNotFoundError(f"{name}: annotation file {path} not found. Run "
                                "download_and_extract(root) or put the published files under "
                                "the root.")
    try:
        data = json.loads(path.read_text())
        images = sorted((CocoImage(int(i["id"]), str(i["file_name"]), int(i["height"]),
                                   int(i["width"])) for i in data["images"]),
                        key=lambda image: image.id)
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ValueError(f"{name}: {path} is not a COCO annotation file with images "
                         f"(id, file_name, height, width): {exc}.") from exc
    by_image: dict[int, list[dict]] = {image.id: [] for image in images}
    for ann in data.get("annotations", []):
        by_image.setdefault(int(ann["image_id"]), []).append(ann)
    categories = {int(c["id"]): str(c["name"]) for c in data.get("categories", [])}
    return images, by_image, categories


def render_masks(images: Sequence[CocoImage], annotations: Mapping[int, list[dict]],
                 mask_for: Callable[[CocoImage, list[dict]], np.ndarray], out_dir: Path,
                 desc: str) -> None:
    """Write each image's `<id>.png` mask into `out_dir` unless it is already there; each
    file is written to a temporary name and renamed, so an interrupted run leaves none
    half-written."""
    from PIL import Image

    out_dir.mkdir(parents=True, exist_ok=True)
    todo = [image for image in images if not (out_dir / mask_name(image)).is_file()]
    for image in tqdm(todo, desc=desc, unit="mask", leave=True, disable=len(todo) < 1000):
        mask = mask_for(image, annotations.get(image.id, []))
        with atomic_file(out_dir / mask_name(image)) as tmp:
            Image.fromarray(mask, "L").save(tmp, format="PNG")


def mask_name(image: CocoImage) -> str:
    return f"{Path(image.file_name).stem}.png"


def rendered_df(root: Path, rows: Sequence[tuple[str, str, str]], val_split: float,
                random_seed: int, name: str) -> pd.DataFrame:
    """The df of (image path, rendered mask path, official split) rows, val carved from
    train; refuses annotated images that are not on disk."""
    frame = pd.DataFrame(rows, columns=["image_path", "mask_path", "official"])
    missing = [p for p in frame["image_path"] if not (root / p).is_file()]
    if missing:
        raise FileNotFoundError(f"{name}: {len(missing)} annotated images are missing, e.g. "
                                f"{root / missing[0]}. The extraction is incomplete: extract "
                                "the archives again (or run download_and_extract(root)).")
    return pd.DataFrame({
        "image_path": frame["image_path"],
        "mask_path": frame["mask_path"],
        "split": carve_val(frame["official"], val_split, random_seed),
    })


# ----- the datasets -----------------------------------------------------------------------


class _CocoSemantic(RgbImages, DownloadedDataset):
    """COCO 2017 images with semantic masks rendered from the instance annotations.

    Split: official. val2017 is the test split (the test2017 labels are not public); val is
    `val_split` of train2017, drawn with the seed (`test_split` is unused). Overlapping
    instances and crowd regions are IGNORE (255): a crowd annotation covers a group of objects
    and the background between them, so its pixels carry no reliable class.
    """

    TASK = "segmentation"
    IGNORE_INDEX = IGNORE
    BANDS = RGB_BANDS
    MEANS = IMAGENET_MEANS  # published ImageNet statistics: everyday photos of the same kind
    STD_DEVS = IMAGENET_STD_DEVS
    # md5s as published with the download scripts that fetch these archives (not re-derived).
    RESOURCES = (
        Resource("http://images.cocodataset.org/zips/train2017.zip", "train2017.zip",
                 md5="cced6f7f71b7629ddf16f17bbcfab6b2"),
        Resource("http://images.cocodataset.org/zips/val2017.zip", "val2017.zip",
                 md5="442b8da7639aecaf257c1dceb8ba8c80"),
        Resource("http://images.cocodataset.org/annotations/annotations_trainval2017.zip",
                 "annotations_trainval2017.zip", md5="f4bbac642086de4f52a3fdda2de5fa2c"),
    )
    CATEGORY_IDS: ClassVar[tuple[int, ...]] = ()

    @classmethod
    def class_of(cls) -> dict[int, int]:
        """COCO category id -> class index (1..), 0 being background."""
        return {cat_id: i + 1 for i, cat_id in enumerate(cls.CATEGORY_IDS)}

    @classmethod
    def download_and_extract(cls, root: str | os.PathLike) -> Path:
        """Download and unpack the archives, then render the masks (skipped when done)."""
        root = super().download_and_extract(root)
        for folder, _ in SPLITS:
            cls.prepare_split(root, folder)
        return root

    @classmethod
    def keep_image(cls, image: CocoImage, annotations: list[dict], folder: str) -> bool:
        return True

    @classmethod
    def prepare_split(cls, root: Path, folder: str) -> list[CocoImage]:
        """The split's kept images, their masks rendered where missing."""
        path = Path(root) / "annotations" / f"instances_{folder}.json"
        images, annotations, categories = read_annotations(path, cls.NAME)
        unknown = sorted(set(categories) - {c for c, _ in COCO_CATEGORIES})
        if unknown:
            raise ValueError(f"{cls.NAME}: {path} has category ids {unknown[:5]} that are not "
                             "among COCO 2017's 80 thing categories; use the 2017 instances_* "
                             "annotation files.")
        kept = [image for image in images
                if cls.keep_image(image, annotations.get(image.id, []), folder)]
        class_of = cls.class_of()
        render_masks(kept, annotations,
                     lambda image, anns: semantic_mask(anns, image.height, image.width,
                                                       class_of),
                     Path(root) / MASKS_DIR / cls.NAME / folder, f"{cls.NAME} {folder} masks")
        return kept

    @classmethod
    def segmentation_df(cls, root: Path, splits: SplitSettings) -> pd.DataFrame:
        rows = []
        for folder, official in SPLITS:
            for image in cls.prepare_split(Path(root), folder):
                rows.append((f"{folder}/{image.file_name}",
                             f"{MASKS_DIR}/{cls.NAME}/{folder}/{mask_name(image)}", official))
        return rendered_df(Path(root), rows, splits.val_split, splits.random_seed, cls.NAME)


class Coco(_CocoSemantic):
    """COCO 2017 semantic segmentation: background + the 80 thing categories, class indices
    1..80 in sorted category-id order (person 1, ..., toothbrush 80). Every image is kept,
    those without annotations as all background."""

    NAME = "coco"
    CLASS_NAMES = ("background", *(snake_case(n) for _, n in COCO_CATEGORIES))
    CATEGORY_IDS = tuple(c for c, _ in COCO_CATEGORIES)


class CocoVOC(_CocoSemantic):
    """COCO 2017 restricted to the 20 PASCAL VOC categories (torchvision's segmentation
    reference): other categories are background, classes are VOC's 21 (background 0).

    As in that reference, a train2017 image is kept only if its VOC-category annotations
    cover more than MIN_TRAIN_AREA pixels (COCO's `area`); every val2017 image is kept.
    """

    NAME = "coco_voc"
    CLASS_NAMES = VOC_CLASS_NAMES
    CATEGORY_IDS = VOC_CATEGORY_IDS

    @classmethod
    def keep_image(cls, image: CocoImage, annotations: list[dict], folder: str) -> bool:
        if folder != "train2017":
            return True
        wanted = set(cls.CATEGORY_IDS)
        return sum(float(a.get("area", 0)) for a in annotations
                   if int(a["category_id"]) in wanted) > MIN_TRAIN_AREA
