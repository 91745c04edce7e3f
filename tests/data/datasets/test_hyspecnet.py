"""HySpecNet-11k from a miniature of the published layout (ten patch archives + splits)."""

from __future__ import annotations

import numpy as np
import pytest

from geovision.data import get_dataset
from geovision.data.datasets.hyspecnet import WATER_VAPOUR_BANDS
from geovision.data.image_io import ImageReadError

EASY = get_dataset("hyspecnet11k")
HARD = get_dataset("hyspecnet11k_hard")


def test_contract_and_easy_lists(miniature, contract):
    root = miniature("hyspecnet11k")
    df = contract(EASY, root, seed_changes_splits=False)
    assert len(df) == 10  # the unlisted eleventh patch is left out
    assert df["split"].value_counts().to_dict() == {"train": 6, "val": 2, "test": 2}
    assert set(df["label_str"]) == {"unlabelled"} and set(df["label_idx"]) == {0}
    first = df["image_path"].iloc[0]
    assert first.startswith("hyspecnet-11k-01/hyspecnet-11k/patches/ENMAP01-____L2A-DT")
    assert first.endswith("-Y00000127_X00000127-SPECTRAL_IMAGE.TIF")  # the listed DATA.npy


def test_hard_lists_keep_tiles_together(miniature, contract):
    df = contract(HARD, miniature("hyspecnet11k_hard"), seed_changes_splits=False)
    tile = df["image_path"].str.split("/").str[3]
    assert (df.groupby(tile)["split"].nunique() == 1).all()
    assert df["split"].value_counts().to_dict() == {"train": 6, "val": 2, "test": 2}


def test_water_vapour_bands_are_dropped(miniature):
    root = miniature("hyspecnet11k")
    assert len(WATER_VAPOUR_BANDS) == 22 and len(EASY.BANDS) == 202
    assert EASY.BANDS[125:127] == ("B126", "B142") and EASY.BANDS[-1] == "B224"
    ds = EASY(root, split="all")
    raw = ds.read_image(ds.split_df["image_path"].iloc[0])
    assert raw.shape == (202, 8, 8) and raw.dtype == np.int16
    assert raw[125, 0, 0] == 12600 and raw[126, 0, 0] == 14200 and raw[-1, 0, 0] == 22400
    unit = EASY(root, split="all", image_transform=EASY.standardiser([0.0] * 202, [1.0] * 202))
    image, label, _ = unit[0]
    assert image.shape == (202, 8, 8) and label == 0
    assert float(image[0, 0, 0]) == pytest.approx(0.01)  # reflectance x 10,000 -> [0, 1]


def test_band_selection_is_configurable(miniature):
    root = miniature("hyspecnet11k")
    every = EASY.with_bands(range(1, 225))
    assert every.NAME == "hyspecnet11k_224bands" and len(every.BANDS) == 224
    ds = every(root, split="test")
    assert ds.read_image(ds.split_df["image_path"].iloc[0])[130, 0, 0] // 100 == 131
    rgb = EASY.with_bands((48, 30, 16), name="hyspecnet11k_rgb")
    assert rgb.MEANS is None and rgb.STD_DEVS is None  # none published for any band
    assert rgb(root, split="test").read_raw(0)[0].shape == (3, 8, 8)
    with pytest.raises(ValueError, match="1..224"):
        EASY.with_bands((0, 225))


def test_a_patch_with_other_bands_is_refused(miniature, tmp_path):
    from tests.data.datasets.conftest import write_geotiff

    path = tmp_path / "x-SPECTRAL_IMAGE.TIF"
    write_geotiff(path, np.zeros((10, 4, 4), np.int16))
    with pytest.raises(ImageReadError, match="224"):
        EASY.read_image(path)


def test_statistics_and_shards(miniature, tmp_path, pipeline_checks):
    from geovision.data.statistics import band_column

    table = pipeline_checks(EASY, miniature("hyspecnet11k"), tmp_path)
    assert table[band_column("B1", "min")].min() == 100
    assert table[band_column("B224", "max")].max() == 22400 + 9 + 7
