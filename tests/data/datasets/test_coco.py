"""MS COCO 2017 (80 classes and the VOC subset) from a miniature of the published layout."""

from __future__ import annotations

import numpy as np
import pytest

from geovision.data import get_dataset
from geovision.data.datasets.coco import instance_mask, semantic_mask

COCO = get_dataset("coco")
VOC = get_dataset("coco_voc")


def mask_of(cls, root, image_id: int, folder: str = "train2017") -> np.ndarray:
    return cls.read_mask(root / "geovision_masks" / cls.NAME / folder / f"{image_id:012d}.png")


def test_contract_and_official_splits(miniature, contract):
    root = miniature("coco")
    df = contract(COCO, root, val_split=0.35)
    assert len(df) == 9  # every image, with or without annotations
    assert df["image_path"].iloc[0] == "train2017/000000000009.jpg"
    assert df["mask_path"].iloc[0] == "geovision_masks/coco/train2017/000000000009.png"
    val2017 = df["image_path"].str.startswith("val2017/")
    assert (df.loc[val2017, "split"] == "test").all() and val2017.sum() == 3
    assert set(df.loc[~val2017, "split"]) == {"train", "val"}


def test_classes_are_contiguous_in_category_id_order():
    assert len(COCO.CLASS_NAMES) == 81 and COCO.CLASS_NAMES[0] == "background"
    assert COCO.CLASS_NAMES[1] == "person" and COCO.CLASS_NAMES[80] == "toothbrush"
    assert COCO.CLASS_NAMES[COCO.class_of()[13]] == "stop_sign"  # after the gap at id 12
    assert COCO.class_of()[13] == 12 and COCO.class_of()[90] == 80
    assert VOC.CLASS_NAMES[VOC.class_of()[5]] == "aeroplane"
    assert VOC.CLASS_NAMES[VOC.class_of()[72]] == "tvmonitor" and len(VOC.CLASS_NAMES) == 21


def test_polygons_overlaps_rle_and_crowd(miniature):
    root = miniature("coco")
    COCO.build_df(root)
    person, dog = COCO.class_of()[1], COCO.class_of()[18]
    mask = mask_of(COCO, root, 9)
    assert mask.shape == (10, 12) and mask.dtype == np.uint8
    # person rows 1-3 x cols 1-4, dog rows 2-5 x cols 3-7; both on rows 2-3 x cols 3-4
    assert (mask[1, 1:5] == person).all() and (mask[2:4, 1:3] == person).all()
    assert (mask[2:4, 3:5] == 255).all()
    assert (mask[4:6, 3:8] == dog).all() and (mask[2:4, 5:8] == dog).all()
    assert mask[0].sum() == 0 and (mask[6:] == 0).all()
    # image 25: crowd uncompressed RLE (column-major: column 0, rows 2-4) is ignored; the
    # giraffe's polygon list starts with a 2-point part, dropped, not read as a box
    mask = mask_of(COCO, root, 25)
    assert (mask[2:5, 0] == 255).all() and (mask == 255).sum() == 3
    giraffe = COCO.class_of()[25]
    assert (mask[5:8, 6:10] == giraffe).all() and (mask == giraffe).sum() == 12
    # image 30: compressed RLE (counts a string) of rows 6-8, cols 8-10
    mask = mask_of(COCO, root, 30)
    assert (mask[6:9, 8:11] == 80).all() and (mask > 0).sum() == 9
    assert mask_of(COCO, root, 34).sum() == 0  # no annotations: all background


def test_one_hot_ignores_255(miniature):
    ds = COCO(miniature("coco"), split="all")
    row = ds.split_df.index[ds.split_df["image_path"].str.endswith("000000000009.jpg")][0]
    image, one_hot, _ = ds[row]
    assert image.shape == (3, 10, 12) and one_hot.shape == (81, 10, 12)
    assert float(one_hot[:, 2, 3].sum()) == 0 and float(one_hot[1, 1, 1]) == 1


def test_voc_subset_keeps_voc_classes_and_filters_train_by_area(miniature, contract):
    root = miniature("coco_voc")
    df = contract(VOC, root, val_split=0.5)
    names = df["image_path"].str.extract(r"(\d+)\.jpg$")[0].astype(int).tolist()
    # train2017: only images whose VOC-class annotations cover more than 1,000 px (9: person
    # 1200 + dog 1500, 36: aeroplane 1800, 42: person 1400); 25 (crowd aeroplane, 3 px), 30 and
    # 34 (no VOC class) are left out; every val2017 image is kept
    assert names == [9, 36, 42, 139, 285, 632]
    mask = mask_of(VOC, root, 9)
    assert set(np.unique(mask).tolist()) == {0, 12, 15, 255}  # dog 12, person 15, overlap
    mask = mask_of(VOC, root, 285, "val2017")
    assert mask.sum() == 0  # bear: not a VOC class, background
    assert (mask_of(VOC, root, 139, "val2017")[2:6, 2:6] == 9).all()  # chair


def test_statistics_and_shards(miniature, tmp_path, pipeline_checks):
    from geovision.data.statistics import class_column

    table = pipeline_checks(COCO, miniature("coco"), tmp_path, split="test")
    assert table[class_column("chair", "pixels")].sum() == 16


def test_decoder_refuses_what_it_cannot_read():
    with pytest.raises(ValueError, match="height, width"):
        instance_mask({"size": [12, 10], "counts": [5, 115]}, 10, 12)
    with pytest.raises(ValueError, match="neither a polygon"):
        instance_mask(123, 10, 12)
    assert semantic_mask([{"category_id": 7, "segmentation": [[0, 0, 2, 0, 2, 2]]}], 4, 4,
                         {1: 1}).sum() == 0  # category outside the mapping
