"""EuroSAT multispectral and RGB from miniature copies of the published layouts."""

from __future__ import annotations

import numpy as np
import pytest

from geovision.data import get_dataset

MS = get_dataset("eurosat")
RGB = get_dataset("eurosat_rgb")


@pytest.mark.parametrize(("cls", "first"), [
    (MS, "ds/images/remote_sensing/otherDatasets/sentinel_2/tif/AnnualCrop/AnnualCrop_1.tif"),
    (RGB, "2750/AnnualCrop/AnnualCrop_1.jpg"),
], ids=["ms", "rgb"])
def test_contract_and_official_lists(cls, first, miniature, contract):
    root = miniature(cls.NAME)
    df = contract(cls, root, seed_changes_splits=False)
    assert len(df) == 30 and df["image_path"].iloc[0] == first
    number = df["image_path"].str.extract(r"_(\d+)\.\w+$")[0].astype(int)
    assert (df["split"] == number.map({1: "train", 2: "val", 3: "test"})).all()
    assert df.loc[df["image_path"].str.contains("SeaLake_"), "label_str"].unique().tolist() == [
        "sea_lake"]
    assert cls.CLASS_NAMES.index("herbaceous_vegetation") == 2


def test_band_order_puts_b8a_last(miniature):
    assert MS.BANDS[8] == "B09" and MS.BANDS[12] == "B8A"
    root = miniature("eurosat")
    image = MS.read_image(root / MS.FOLDER / "Forest" / "Forest_2.tif")
    assert image.shape == (13, 16, 16) and image.dtype == np.uint16
    assert image[:, 0, 0].tolist() == [100 * (b + 1) for b in range(13)]  # file order kept
    tensor, label, _ = MS(root, split="val")[1]
    # uint16 reflectance x 10000 scaled by SCALE, then standardised with the band statistics
    expected = (1300 / 10000 - MS.MEANS[12]) / MS.STD_DEVS[12]
    assert float(tensor[12, 0, 0]) == pytest.approx(expected, rel=1e-5)
    assert MS.MEANS[12] == pytest.approx(0.259414, abs=1e-6)


def test_rgb_variant_reads_jpeg(miniature):
    image, label, df_idx = RGB(miniature("eurosat_rgb"), split="test")[0]
    assert image.shape == (3, 16, 16) and label == 0


def test_missing_split_lists_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="eurosat-train.txt"):
        MS.build_df(tmp_path)
