"""BigEarthNet-S2 multi-label from a miniature copy of the published layout."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from geovision.data import get_dataset

CLS = get_dataset("bigearthnet")


def test_contract_and_official_lists(miniature, contract):
    root = miniature("bigearthnet")
    df = contract(CLS, root, seed_changes_splits=False)
    assert len(df) == 6  # the unlisted (snow-covered) patch is left out
    assert df["split"].value_counts().to_dict() == {"train": 3, "val": 2, "test": 1}
    patch = "S2A_MSIL2A_20170613T101031_0_45"
    row = df[df["image_path"] == f"BigEarthNet-v1.0/{patch}/{patch}_B01.tif"].iloc[0]
    assert row["label_str"] == "coniferous_forest|mixed_forest" and row["split"] == "train"


def test_labels_are_snake_case_in_class_order(miniature):
    assert len(CLS.CLASS_NAMES) == 43 and CLS.TASK == "multilabel"
    assert CLS.CLASS_NAMES[28] == "transitional_woodland_shrub"
    assert CLS.CLASS_NAMES[42] == "sea_and_ocean"
    df = CLS.build_df(miniature("bigearthnet"))
    labels = dict(zip(df["image_path"].str.split("/").str[1], df["label_str"], strict=True))
    # stored as "Transitional woodland/shrub", "Discontinuous urban fabric": reordered
    assert labels["S2A_MSIL2A_20170613T101031_1_45"] == (
        "discontinuous_urban_fabric|transitional_woodland_shrub")
    assert labels["S2B_MSIL2A_20180204T094161_3_58"] == (
        "land_principally_occupied_by_agriculture_with_significant_areas_of_natural_vegetation"
        "|beaches_dunes_sands")


def test_target_is_multi_hot(miniature):
    ds = CLS(miniature("bigearthnet"), split="test")
    image, target, df_idx = ds[0]
    assert target.dtype == torch.float32 and target.shape == (43,)
    assert torch.nonzero(target).flatten().tolist() == [
        CLS.CLASS_NAMES.index("non_irrigated_arable_land"), CLS.CLASS_NAMES.index("water_bodies")]


def test_bands_resampled_to_the_10m_grid(miniature):
    root = miniature("bigearthnet")
    patch = "S2A_MSIL2A_20170613T101031_0_46"
    image = CLS.read_image(root / "BigEarthNet-v1.0" / patch / f"{patch}_B01.tif")
    assert image.shape == (12, 120, 120) and image.dtype == np.uint16
    assert CLS.BANDS == ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09",
                         "B11", "B12")
    # 10 m band (B02): read as stored, a ramp of +1 per column
    assert image[1, 0, :3].tolist() == [200, 201, 202]
    # 60 m band (B01, 20 px, +6 per stored column): bilinear keeps the ramp's mean and range,
    # values in between the stored ones (nearest would repeat each value 6 times)
    b01 = image[0].astype(float)
    assert abs(b01.mean() - (100 + 6 * 9.5)) < 1.0
    assert len(np.unique(b01[0])) > 20
    # every band's level identifies it: the stack is in BANDS order
    assert [int(image[i].min()) // 100 for i in range(12)] == list(range(1, 13))


def test_multilabel_df_is_validated(miniature):
    root = miniature("bigearthnet")
    df = CLS.build_df(root)
    with pytest.raises(ValueError, match="not in CLASS_NAMES"):
        CLS(root, df=df.assign(label_str="forest"))
    with pytest.raises(ValueError, match="in CLASS_NAMES order"):
        CLS(root, df=df.assign(label_str="mixed_forest|coniferous_forest"))
    with pytest.raises(ValueError, match="lacks columns"):
        CLS(root, df=df.drop(columns=["label_str"]))
    empty = CLS(root, df=df.assign(label_str=""), split="all")
    assert float(empty[0][1].sum()) == 0  # a sample may carry no label


def test_missing_band_file_is_named(miniature, tmp_path):
    import shutil

    from geovision.data.image_io import ImageReadError

    patch = "S2A_MSIL2A_20170613T101031_0_46"
    source = miniature("bigearthnet") / "BigEarthNet-v1.0" / patch
    folder = shutil.copytree(source, tmp_path / patch)
    (folder / f"{patch}_B11.tif").unlink()
    with pytest.raises(ImageReadError, match=f"{patch}_B11.tif"):
        CLS.read_image(folder / f"{patch}_B01.tif")
    with pytest.raises(ImageReadError, match="not a BigEarthNet B01 band file"):
        CLS.read_image(folder / f"{patch}_B02.tif")


@pytest.mark.parametrize("kind", ["hdf", "mds"])
def test_multi_hot_targets_survive_shards(miniature, tmp_path, kind):
    from geovision.data.shards.hdf import HdfDataset, write_hdf_splits
    from geovision.data.shards.streaming import StreamingGeoDataset, write_streaming_splits

    root = miniature("bigearthnet")
    source = CLS(root, split="train")
    if kind == "hdf":
        path = write_hdf_splits(CLS, root, tmp_path, splits=("train",),
                                progress=False)["train"].path
        reader = HdfDataset(path, source.sample_transform)
    else:
        path = write_streaming_splits(CLS, root, tmp_path, splits=("train",),
                                      progress=False)["train"].path
        reader = StreamingGeoDataset(str(path), source.sample_transform)
    assert len(reader) == len(source) == 3
    for index in range(len(source)):
        got, want = reader[index], source[index]
        assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])
        assert got[2] == want[2]
