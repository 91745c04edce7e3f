"""Massachusetts Buildings and Roads in both published layouts."""

from __future__ import annotations

import numpy as np
import pytest

from geovision.data import get_dataset
from geovision.data.download import ManualDownloadError


@pytest.mark.parametrize("name", ["massachusetts_buildings", "massachusetts_roads"])
def test_contract_and_official_folders(name, miniature, contract):
    cls = get_dataset(name)
    root = miniature(name)
    df = contract(cls, root, seed_changes_splits=False)
    assert df["split"].value_counts().to_dict() == {"train": 4, "val": 2, "test": 2}
    first = df.iloc[0]
    if name == "massachusetts_buildings":  # the author's layout
        assert first["image_path"] == "train/sat/22678915_15.tiff"
        assert first["mask_path"] == "train/map/22678915_15.tif"
        assert set(df.loc[df["split"] == "val", "image_path"].str[:6]) == {"valid/"}
    else:  # the Kaggle mirror's layout
        assert first["image_path"] == "tiff/train/22678915_15.tiff"
        assert first["mask_path"] == "tiff/train_labels/22678915_15.tif"
    assert cls.CLASS_NAMES[1] == ("building" if "buildings" in name else "road")


def test_maps_read_as_0_1_from_one_or_three_bands(miniature):
    cls = get_dataset("massachusetts_roads")
    for name, rel in (("massachusetts_buildings", "train/map/22678930_15.tif"),
                      ("massachusetts_roads", "tiff/train_labels/22678930_15.tif")):
        mask = cls.read_mask(miniature(name) / rel)
        assert mask.shape == (8, 8) and set(np.unique(mask).tolist()) == {0, 1}
        assert mask[:, 4:].sum() == 0


def test_manual_download_names_both_sources(tmp_path, miniature):
    cls = get_dataset("massachusetts_buildings")
    with pytest.raises(ManualDownloadError) as err:
        cls.download_and_extract(tmp_path)
    assert "https://www.cs.toronto.edu/~vmnih/data/mass_buildings/" in str(err.value)
    assert "balraj98/massachusetts-buildings-dataset" in str(err.value)
    for layout in ("massachusetts_buildings", "massachusetts_roads"):  # site, mirror
        assert cls.download_and_extract(miniature(layout)) == miniature(layout)
