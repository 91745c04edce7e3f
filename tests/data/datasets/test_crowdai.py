"""CrowdAI Mapping Challenge from a miniature of the published layout."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from geovision.data import get_dataset
from geovision.data.download import ManualDownloadError

CLS = get_dataset("crowdai_mapping")
SMALL = get_dataset("crowdai_mapping_small")


def test_contract_and_official_splits(miniature, contract):
    root = miniature("crowdai_mapping")
    df = contract(CLS, root, val_split=0.4)
    assert len(df) == 7
    assert df["image_path"].iloc[0] == "train/images/000000000000.jpg"
    assert df["mask_path"].iloc[0] == "geovision_masks/crowdai_mapping/train/000000000000.png"
    assert (df.loc[df["image_path"].str.startswith("val/"), "split"] == "test").all()
    assert set(df.loc[df["image_path"].str.startswith("train/"), "split"]) == {"train", "val"}


def test_masks_are_the_union_of_category_100_polygons(miniature):
    root = miniature("crowdai_mapping")
    CLS.build_df(root)
    mask = CLS.read_mask(root / "geovision_masks/crowdai_mapping/train/000000000000.png")
    assert mask.shape == (12, 12) and set(np.unique(mask).tolist()) == {0, 1}
    # two overlapping buildings (rows/cols 1-4 and 3-8): one building, no ignore
    assert mask[1:5, 1:5].all() and mask[3:9, 3:9].all() and mask.sum() == 16 + 36 - 4
    empty = CLS.read_mask(root / "geovision_masks/crowdai_mapping/train/000000000001.png")
    assert empty.sum() == 0
    _, one_hot, _ = CLS(root, split="all")[0]
    assert one_hot.shape == (2, 12, 12) and float(one_hot.sum()) == 144


def test_small_variant_reads_annotation_small(miniature, contract):
    df = contract(SMALL, miniature("crowdai_mapping_small"), val_split=0.5)
    assert df["image_path"].tolist() == [
        "train/images/000000000000.jpg", "train/images/000000000001.jpg",
        "train/images/000000000002.jpg", "val/images/000000060317.jpg",
        "val/images/000000060318.jpg"]


def test_other_categories_are_refused(miniature, tmp_path):
    root = shutil.copytree(miniature("crowdai_mapping"), tmp_path / "crowdai")
    shutil.rmtree(root / "geovision_masks", ignore_errors=True)
    path = root / "train" / "annotation.json"
    data = json.loads(path.read_text())
    data["categories"] = [{"id": 1, "name": "building"}]
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="single category 100"):
        CLS.build_df(root)


def test_manual_download_says_where(tmp_path):
    with pytest.raises(ManualDownloadError, match="aicrowd.com/challenges/mapping-challenge"):
        CLS.download_and_extract(tmp_path)


def test_statistics_and_shards(miniature, tmp_path, pipeline_checks):
    from geovision.data.statistics import class_column

    table = pipeline_checks(CLS, miniature("crowdai_mapping"), tmp_path)
    assert (table[class_column("building", "pixels")] > 0).any()
