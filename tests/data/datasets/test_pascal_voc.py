"""PASCAL VOC 2012 segmentation from a miniature copy of the published layout."""

from __future__ import annotations

import numpy as np

from geovision.data import get_dataset

CLS = get_dataset("pascal_voc")


def test_contract_and_official_lists(miniature, contract):
    root = miniature("pascal_voc")
    lists = root / "VOCdevkit/VOC2012/ImageSets/Segmentation"
    train_ids = (lists / "train.txt").read_text().split()
    val_ids = (lists / "val.txt").read_text().split()
    df = contract(CLS, root)
    assert len(df) == len(train_ids) + len(val_ids) == 14  # listed images only
    assert df["image_path"].iloc[0] == "VOCdevkit/VOC2012/JPEGImages/2007_000032.jpg"
    assert df["mask_path"].iloc[0] == "VOCdevkit/VOC2012/SegmentationClass/2007_000032.png"
    ids = df["image_path"].str.extract(r"/(\d{4}_\d{6})\.jpg$")[0]
    assert (df.loc[ids.isin(val_ids), "split"] == "test").all()
    assert (df.loc[ids.isin(train_ids), "split"].value_counts().to_dict()
            == {"train": 8, "val": 2})


def test_classes_and_void(miniature):
    assert len(CLS.CLASS_NAMES) == 21 and CLS.CLASS_NAMES[0] == "background"
    assert CLS.CLASS_NAMES[15] == "person" and CLS.IGNORE_INDEX == 255
    root = miniature("pascal_voc")
    mask = CLS.read_mask(root / "VOCdevkit/VOC2012/SegmentationClass/2007_000039.png")
    assert set(np.unique(mask).tolist()) == {0, 2, 255}  # palette indices, not colours
    ds = CLS(root, split="all")
    position = ds.split_df.index[ds.split_df["mask_path"].str.endswith("2007_000039.png")][0]
    _, one_hot, _ = ds[position]
    assert one_hot.shape == (21, 10, 12)
    assert float(one_hot[:, 2, 2].sum()) == 0  # void: no class
    assert float(one_hot[2, 4, 4]) == 1 and float(one_hot[0, 0, 0]) == 1
