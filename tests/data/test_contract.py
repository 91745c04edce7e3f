"""The dataset contract, field by field, on the built-in dataset."""

from __future__ import annotations

import io
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from geovision.data import UnknownDatasetError, get_dataset, list_datasets
from geovision.data.base import GeoDataset
from geovision.data.image_io import ImageReadError
from geovision.data.splits import SplitSettings

CLS = get_dataset("synthetic")
SEG = get_dataset("synthetic_segmentation")


def test_registry_lists_and_resolves():
    assert {"synthetic", "synthetic_segmentation"} <= set(list_datasets())
    assert list_datasets() == sorted(list_datasets())
    assert CLS.NAME == "synthetic" and issubclass(CLS, GeoDataset)


def test_unknown_dataset_names_the_known_ones():
    with pytest.raises(UnknownDatasetError) as err:
        get_dataset("imagenet-typo")
    assert "imagenet-typo" in str(err.value)
    for name in list_datasets():
        assert name in str(err.value)


@pytest.mark.parametrize("dataset_cls", [CLS, SEG])
def test_class_attributes(dataset_cls):
    assert dataset_cls.TASK in ("classification", "segmentation")
    assert isinstance(dataset_cls.CLASS_NAMES, tuple)
    assert all(isinstance(n, str) for n in dataset_cls.CLASS_NAMES)
    assert len(dataset_cls.MEANS) == len(dataset_cls.STD_DEVS) == len(dataset_cls.BANDS) == 4
    assert all(0 < m < 1 for m in dataset_cls.MEANS)
    assert dataset_cls.BANDS == ("red", "green", "blue", "nir")


def test_classification_df_columns_and_values(synthetic_root):
    df = CLS.classification_df(synthetic_root, SplitSettings(0, 0.1, 0.2))
    assert list(df.columns) == ["image_path", "label_str", "label_idx", "split"]
    assert len(df) == 400
    assert df["image_path"].iloc[0] == "images/scene_0000.tif"
    assert not any(p.startswith("/") for p in df["image_path"])
    assert set(df["split"]) == {"train", "val", "test"}
    assert (df["label_idx"] == df["label_str"].map(CLS.CLASS_NAMES.index)).all()
    # stratified with exact rounding per class: 10% val and 20% test within every class
    counts = pd.crosstab(df["label_str"], df["split"])
    for label, row in counts.iterrows():
        total = row.sum()
        assert row["test"] == round(total * 0.2), label
        assert row["val"] == round(total * 0.1), label


def test_segmentation_df_columns(synthetic_root):
    df = SEG.segmentation_df(synthetic_root, SplitSettings(0, 0.1, 0.2))
    assert list(df.columns) == ["image_path", "mask_path", "split"]
    assert df["mask_path"].iloc[7] == "masks/scene_0007.png"


@pytest.mark.parametrize("dataset_cls", [CLS, SEG])
def test_df_is_deterministic_byte_for_byte(dataset_cls, synthetic_root):
    first, second = io.BytesIO(), io.BytesIO()
    seed_3, seed_4 = dataset_cls.split_settings(3), dataset_cls.split_settings(4)
    dataset_cls.build_df(synthetic_root, seed_3).to_parquet(first)
    dataset_cls.build_df(synthetic_root, seed_3).to_parquet(second)
    assert first.getvalue() == second.getvalue()
    other = dataset_cls.build_df(synthetic_root, seed_4)
    assert not other["split"].equals(dataset_cls.build_df(synthetic_root, seed_3)["split"])


def test_splits_are_disjoint_and_cover_everything(synthetic_root):
    parts = {s: CLS(synthetic_root, split=s) for s in ("train", "val", "trainval", "test", "all")}
    ids = {s: set(ds.split_df["df_idx"]) for s, ds in parts.items()}
    assert not ids["train"] & ids["val"]
    assert not ids["train"] & ids["test"]
    assert not ids["val"] & ids["test"]
    assert ids["train"] | ids["val"] == ids["trainval"]
    assert ids["trainval"] | ids["test"] == ids["all"] == set(range(400))
    assert len(parts["all"]) == 400


def test_split_df_has_absolute_paths_and_maps_back(synthetic_root):
    ds = CLS(synthetic_root, split="val")
    assert ds.split_df.columns[0] == "df_idx"
    for _, row in ds.split_df.iterrows():
        source = ds.df.loc[row["df_idx"]]
        assert row["image_path"] == str(synthetic_root / source["image_path"])
        assert row["label_idx"] == source["label_idx"]
        assert source["split"] == "val"


def test_classification_item(synthetic_root):
    ds = CLS(synthetic_root, split="test")
    image, label, df_idx = ds[5]
    assert isinstance(image, torch.Tensor) and image.dtype == torch.float32
    assert image.shape == (4, 64, 64)
    assert isinstance(label, int) and isinstance(df_idx, int)
    assert label == ds.df.loc[df_idx, "label_idx"]
    raw = ds.read_raw(5)[0].astype(np.float64) / 255
    expected = (raw - np.array(CLS.MEANS)[:, None, None]) / np.array(CLS.STD_DEVS)[:, None, None]
    np.testing.assert_allclose(image.numpy(), expected, atol=1e-5)
    assert ds[-1][2] == ds[len(ds) - 1][2]
    with pytest.raises(IndexError):
        ds[len(ds)]


def test_segmentation_item_is_one_hot(synthetic_root):
    ds = SEG(synthetic_root, split="train")
    image, mask, df_idx = ds[3]
    assert image.shape == (4, 64, 64)
    assert mask.shape == (5, 64, 64) and mask.dtype == torch.float32
    assert torch.all(mask.sum(dim=0) == 1)
    assert set(mask.unique().tolist()) <= {0.0, 1.0}
    raw_mask = ds.read_raw(3)[1]
    assert torch.equal(mask.argmax(dim=0), torch.from_numpy(raw_mask.astype(np.int64)))
    assert ds.split_df.loc[3, "df_idx"] == df_idx


def test_transforms_are_applied(synthetic_root):
    calls = []

    def common(image, target):
        calls.append(1)
        return image * 0, target

    ds = CLS(synthetic_root, split="val", image_transform=lambda a: torch.ones(1),
             target_transform=lambda y: y + 100, common_transform=common)
    image, label, _ = ds[0]
    assert torch.equal(image, torch.zeros(1)) and label >= 100 and calls == [1]


def test_invalid_split_settings_are_refused(synthetic_root):
    with pytest.raises(ValueError, match="split"):
        CLS(synthetic_root, split="training")
    with pytest.raises(ValueError, match=r"\(0, 1\)"):
        CLS(synthetic_root, val_split=0.6, test_split=0.5)
    with pytest.raises(ValueError, match=r"\(0, 1\)"):
        CLS(synthetic_root, val_split=0.0, test_split=0.0)


def test_user_df_is_validated(synthetic_root):
    df = CLS.build_df(synthetic_root)
    assert len(CLS(synthetic_root, df=df.iloc[:20], split="all")) == 20
    with pytest.raises(ValueError, match="label_idx"):
        CLS(synthetic_root, df=df.drop(columns=["label_idx"]))
    with pytest.raises(ValueError, match="split values"):
        CLS(synthetic_root, df=df.assign(split="holdout"))
    with pytest.raises(ValueError, match="missing files"):
        CLS(synthetic_root, df=df.assign(image_path="images/nope.tif"))
    with pytest.raises(ValueError, match="CLASS_NAMES"):
        CLS(synthetic_root, df=df.assign(label_idx=0))


def test_bad_images_name_the_file(synthetic_root, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(synthetic_root, root)
    (root / "images" / "scene_0001.tif").write_bytes(b"II*\x00truncated")
    ds = CLS(root, split="all")
    with pytest.raises(ImageReadError, match="scene_0001.tif"):
        ds[1]
    import rasterio

    with rasterio.open(root / "images" / "scene_0002.tif", "w", driver="GTiff", height=8,
                       width=8, count=3, dtype="uint8") as dst:
        dst.write(np.zeros((3, 8, 8), np.uint8))
    with pytest.raises(ImageReadError, match="3 bands but the dataset expects 4"):
        ds[2]
