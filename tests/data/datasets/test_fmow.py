"""fMoW-RGB from a miniature copy of the published layout."""

from __future__ import annotations

import pytest

from geovision.data import get_dataset
from geovision.data.download import ManualDownloadError

CLS = get_dataset("fmow")


def test_contract_and_location_grouped_split(miniature, contract):
    root = miniature("fmow")
    df = contract(CLS, root)
    assert len(df) == 40  # the _msrgb.jpg files are not samples
    assert df["image_path"].iloc[0] == "train/airport/airport_0/airport_0_0_rgb.jpg"
    location = df["image_path"].str.split("/").str[:3].str.join("/")
    assert (df.groupby(location)["split"].nunique() == 1).all()  # views never straddle
    assert (df.loc[df["image_path"].str.startswith("val/"), "split"] == "test").all()
    val = df[df["split"] == "val"]
    assert len(val) == 8 and (val.groupby("label_str").size() == 2).all()  # 1 location each


def test_category_names(miniature):
    assert len(CLS.CLASS_NAMES) == 62
    assert CLS.CLASS_NAMES[30] == "multi_unit_residential"
    df = CLS.build_df(miniature("fmow"))
    rows = df[df["image_path"].str.contains("/multi-unit_residential/")]
    assert set(rows["label_str"]) == {"multi_unit_residential"} and set(rows["label_idx"]) == {30}


def test_manual_download(tmp_path):
    with pytest.raises(ManualDownloadError, match="s3://spacenet-dataset/Hosted-Datasets/fmow"):
        CLS.download_and_extract(tmp_path)
