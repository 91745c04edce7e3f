"""Imagenette (full, 320, 160) from miniature copies of the published layout."""

from __future__ import annotations

import pytest

from geovision.data import get_dataset

VARIANTS = {"imagenette": "imagenette2", "imagenette_320": "imagenette2-320",
            "imagenette_160": "imagenette2-160"}


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_contract_and_official_split(name, miniature, contract):
    cls = get_dataset(name)
    root = miniature(name)
    df = contract(cls, root)
    assert len(df) == 60
    assert df["image_path"].iloc[0] == f"{VARIANTS[name]}/train/n01440764/n01440764_1000.JPEG"
    # the published val folder is the test split; val is carved from train, 1 of 4 per class
    from_val = df["image_path"].str.contains("/val/")
    assert (df.loc[from_val, "split"] == "test").all()
    assert set(df.loc[~from_val, "split"]) == {"train", "val"}
    assert (df[df["split"] == "val"].groupby("label_str").size() == 1).all()


def test_class_names_follow_sorted_wordnet_ids(miniature):
    cls = get_dataset("imagenette_160")
    assert cls.CLASS_NAMES[5] == "french_horn" and len(cls.CLASS_NAMES) == 10
    df = cls.build_df(miniature("imagenette_160"))
    horn = df[df["image_path"].str.contains("/n03394916/")]
    assert set(horn["label_str"]) == {"french_horn"} and set(horn["label_idx"]) == {5}


def test_grayscale_jpeg_reads_as_three_bands(miniature):
    cls = get_dataset("imagenette")
    root = miniature("imagenette")
    gray = root / "imagenette2/train/n03394916/n03394916_1005.JPEG"
    image = cls.read_image(gray)
    assert image.shape == (3, 10, 12) and (image[0] == image[1]).all()


def test_missing_folder_says_what_to_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="download_and_extract"):
        get_dataset("imagenette").build_df(tmp_path)
