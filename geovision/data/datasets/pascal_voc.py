"""PASCAL VOC 2012 semantic segmentation: 20 object classes plus background.

Layout after extraction:

    <root>/VOCdevkit/VOC2012/JPEGImages/<id>.jpg
    <root>/VOCdevkit/VOC2012/SegmentationClass/<id>.png      palette PNG: index = class,
                                                             255 = void (object borders)
    <root>/VOCdevkit/VOC2012/ImageSets/Segmentation/{train,val,trainval}.txt
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
    read_lines,
    require_files,
)
from geovision.data.download import Resource
from geovision.data.splits import SplitSettings, carve_val
from geovision.errors import DataError

BASE = "VOCdevkit/VOC2012"
CLASS_NAMES = ("background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car",
               "cat", "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person",
               "pottedplant", "sheep", "sofa", "train", "tvmonitor")


class PascalVOC(RgbImages, DownloadedDataset):
    """VOC 2012 segmentation (the 2913 images with SegmentationClass masks).

    Split: official. The published val list is the test split (VOC's own test labels are not
    public); val is `val_split` of the published train list, drawn with the seed
    (`test_split` is unused). Void pixels (255) are ignored: their one-hot vector is all zeros.
    The palette PNGs are read as palette indices, which are the class indices.
    """

    NAME = "pascal_voc"
    TASK = "segmentation"
    CLASS_NAMES = CLASS_NAMES
    IGNORE_INDEX = 255
    BANDS = RGB_BANDS
    MEANS = IMAGENET_MEANS  # published ImageNet statistics: everyday photos of the same kind
    STD_DEVS = IMAGENET_STD_DEVS
    # md5 as published alongside torchvision's VOCSegmentation dataset (not re-derived here).
    RESOURCES = (Resource(
        "http://host.robots.ox.ac.uk/pascal/VOC/voc2012/VOCtrainval_11-May-2012.tar",
        "VOCtrainval_11-May-2012.tar", md5="6cd6e144f989b92b3379bac3b3de84fd"),)

    @classmethod
    def segmentation_df(cls, root: Path, splits: SplitSettings) -> pd.DataFrame:
        lists = Path(root) / BASE / "ImageSets" / "Segmentation"
        rows = [(image_id, split)
                for list_name, split in (("train", "train"), ("val", "test"))
                for image_id in read_lines(lists / f"{list_name}.txt", f"{cls.NAME} split list")]
        ids = pd.DataFrame(rows, columns=["id", "official"]).sort_values(
            "id", kind="stable").reset_index(drop=True)
        if ids["id"].duplicated().any():
            raise DataError(f"{cls.NAME}: ids {ids['id'][ids['id'].duplicated()].tolist()[:5]} "
                            "appear in both train.txt and val.txt.")
        df = pd.DataFrame({
            "image_path": f"{BASE}/JPEGImages/" + ids["id"] + ".jpg",
            "mask_path": f"{BASE}/SegmentationClass/" + ids["id"] + ".png",
            "split": carve_val(ids["official"], splits.val_split, splits.random_seed),
        })
        require_files(Path(root), [*df["image_path"], *df["mask_path"]], cls.NAME)
        return df
