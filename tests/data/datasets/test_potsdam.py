"""ISPRS Potsdam from a miniature copy of the published layout (all 38 labelled tiles)."""

from __future__ import annotations

import numpy as np
import pytest

from geovision.data import get_dataset
from geovision.data.download import ManualDownloadError
from geovision.data.image_io import ImageReadError

CLS = get_dataset("potsdam")


def test_contract_and_official_tiles(miniature, contract):
    root = miniature("potsdam")
    df = contract(CLS, root)
    assert len(df) == 38
    tile = df["image_path"].str.extract(r"top_potsdam_(\d+_\d+)_RGBIR\.tif$")[0]
    assert (df["mask_path"] == "5_Labels_all/top_potsdam_" + tile + "_label.tif").all()
    test_tiles = {"2_13", "2_14", "3_13", "3_14", "4_13", "4_14", "4_15", "5_13", "5_14",
                  "5_15", "6_13", "6_14", "6_15", "7_13"}
    assert set(tile[df["split"] == "test"]) == test_tiles
    assert df["split"].value_counts().to_dict() == {"train": 18, "test": 14, "val": 6}


def test_colours_map_to_class_indices(miniature):
    root = miniature("potsdam")
    assert CLS.CLASS_NAMES == ("impervious_surfaces", "building", "low_vegetation", "tree",
                               "car", "clutter")
    assert CLS.BANDS == ("red", "green", "blue", "nir")
    mask = CLS.read_mask(root / "5_Labels_all/top_potsdam_2_10_label.tif")
    assert mask.shape == (6, 6)
    assert (mask == np.arange(6)[:, None]).all()  # row r holds class r; near-white stays 0
    image, one_hot, _ = CLS(root, split="all")[0]
    assert image.shape == (4, 6, 6) and one_hot.shape == (6, 6, 6)


def test_boundary_black_is_ignored_and_other_colours_refused(tmp_path):
    import rasterio

    label = np.zeros((3, 2, 2), np.uint8)
    label[:, 0, 0] = (255, 255, 255)
    label[:, 1, 1] = (255, 0, 255)  # magenta: not a Potsdam colour
    with rasterio.open(tmp_path / "l.tif", "w", driver="GTiff", height=2, width=2, count=3,
                       dtype="uint8") as dst:
        dst.write(label)
    with pytest.raises(ImageReadError, match="holds codes \\[5\\]"):
        CLS.read_mask(tmp_path / "l.tif")
    label[:, 1, 1] = 0
    with rasterio.open(tmp_path / "l.tif", "w", driver="GTiff", height=2, width=2, count=3,
                       dtype="uint8") as dst:
        dst.write(label)
    assert CLS.read_mask(tmp_path / "l.tif").tolist() == [[0, 255], [255, 255]]


def test_manual_download(tmp_path):
    with pytest.raises(ManualDownloadError, match="4_Ortho_RGBIR.zip and 5_Labels_all.zip"):
        CLS.download_and_extract(tmp_path)
    with pytest.raises(FileNotFoundError, match="top_potsdam_2_10_RGBIR.tif not found"):
        CLS.build_df(tmp_path)
