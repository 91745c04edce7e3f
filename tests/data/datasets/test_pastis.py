"""PASTIS-R from a miniature of the published archive: S2 / S1A / S1D series of different
lengths, TARGET channel 0 with void, the 5-fold split, dates from metadata.geojson."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest

from geovision.data import get_dataset
from geovision.data.image_io import ImageReadError
from geovision.data.temporal import parse_dates
from tests.data.datasets.conftest import PASTIS_PATCHES, PASTIS_SIZE, pastis_s2_values

S2 = get_dataset("pastis_r")
S1A = get_dataset("pastis_r_s1a")
S1D = get_dataset("pastis_r_s1d")


def test_contract_and_folds(miniature, contract):
    df = contract(S2, miniature("pastis_r"), seed_changes_splits=False)
    ids = sorted(PASTIS_PATCHES)
    assert df["image_path"].tolist() == [f"PASTIS-R/DATA_S2/S2_{i}.npy" for i in ids]
    assert df["mask_path"].iloc[0] == "PASTIS-R/ANNOTATIONS/TARGET_10000.npy"
    folds = [PASTIS_PATCHES[i][0] for i in ids]
    expected = ["train" if f <= 3 else "val" if f == 4 else "test" for f in folds]
    assert df["split"].tolist() == expected
    assert df["split"].value_counts().to_dict() == {"train": 6, "val": 2, "test": 2}
    assert len(S2.CLASS_NAMES) == 19 and S2.IGNORE_INDEX == 19
    assert S2.CLASS_NAMES[2] == "soft_winter_wheat" and S2.CLASS_NAMES[18] == "sorghum"


def test_dates_come_from_the_metadata_of_each_sensor(miniature):
    root = miniature("pastis_r")
    for cls, column in ((S2, 1), (S1A, 2), (S1D, 3)):
        df = cls.build_df(root)
        lengths = [len(parse_dates(d)) for d in df["dates"]]
        assert lengths == [PASTIS_PATCHES[i][column] for i in sorted(PASTIS_PATCHES)], cls.NAME
    first = parse_dates(S2.build_df(root)["dates"].iloc[0])  # patch 10000: 2018-09-17 + 4 days
    assert first[:2] == [dt.date(2018, 9, 21), dt.date(2018, 10, 3)]
    # the patch whose dates the geojson holds as JSON text reads the same way
    text = S2.build_df(root).set_index("image_path").loc["PASTIS-R/DATA_S2/S2_30123.npy"]
    assert len(parse_dates(text["dates"])) == 2


def test_series_are_padded_with_a_mask_and_dated_from_2018_09_01(miniature):
    root = miniature("pastis_r")
    ds = S2(root, split="all")
    assert ds.max_dates == max(t for _, t, _, _ in PASTIS_PATCHES.values()) == 5
    series, mask, df_idx = ds.read_raw(1)  # patch 10002: 4 dates
    assert series.images.shape == (5, 10, PASTIS_SIZE, PASTIS_SIZE)
    assert series.images.dtype == np.int16
    assert series.valid.tolist() == [True] * 4 + [False]
    assert series.days.tolist() == [16 + 10002 % 7 + 12 * k for k in range(4)] + [0]
    assert series.images[2, 3, 1, 1] == pastis_s2_values(10002, 2, 3)
    assert not series.images[4].any()  # padding
    assert mask.dtype == np.uint8 and mask.shape == (PASTIS_SIZE, PASTIS_SIZE)
    assert mask[0, 0] == 10002 % 18 + 1 and (mask[7] == 19).all()
    s1 = S1A(root, split="all").read_raw(0)[0]
    assert s1.images.shape == (6, 3, PASTIS_SIZE, PASTIS_SIZE) and s1.images.dtype == np.float16


def test_void_is_ignored_in_the_one_hot_target(miniature):
    root = miniature("pastis_r")
    standardise = S2.standardiser([0.1] * 10, [0.2] * 10)
    image, target, _ = S2(root, split="all", image_transform=standardise)[0]
    assert target.shape == (19, PASTIS_SIZE, PASTIS_SIZE)
    assert float(target[:, 7].sum()) == 0  # the void row belongs to no class
    assert float(target[1, 5, 3]) == 1  # meadow
    raw = S2(root, split="all").read_raw(0)[0]
    expected = (raw.images[0, 4, 2, 2] / 10000 - 0.1) / 0.2
    assert float(image.images[0, 4, 2, 2]) == pytest.approx(expected, rel=1e-5)


def test_statistics_and_shards_count_every_real_date(miniature, tmp_path, pipeline_checks):
    from geovision.data.statistics import band_column, class_column

    table = pipeline_checks(S2, miniature("pastis_r"), tmp_path)
    row = table.loc[table["image_path"] == "PASTIS-R/DATA_S2/S2_10002.npy"].iloc[0]
    assert row["height"] == 4 * PASTIS_SIZE and row["width"] == PASTIS_SIZE  # 4 real dates
    assert row[band_column("B2", "count")] == 4 * PASTIS_SIZE * PASTIS_SIZE
    assert row[band_column("B2", "min")] == pastis_s2_values(10002, 0, 0)
    assert row[band_column("B2", "max")] == pastis_s2_values(10002, 3, 0) + 3
    assert row[class_column("meadow", "pixels")] == 18
    s1 = pipeline_checks(S1D, miniature("pastis_r_s1d"), tmp_path / "s1d")
    assert (s1[band_column("vv", "mean")] < 0).all()  # backscatter in dB, counted as stored


def test_a_series_whose_dates_disagree_with_the_metadata_is_refused(miniature, tmp_path):
    import shutil

    root = tmp_path / "pastis"
    shutil.copytree(miniature("pastis_r"), root)
    path = root / "PASTIS-R" / "DATA_S2" / "S2_10000.npy"
    np.save(path, np.load(path)[:2])
    ds = S2(root, split="all")
    with pytest.raises(ImageReadError, match="holds 2 dates but the index lists 5"):
        ds.read_raw(0)
    np.save(path, np.zeros((5, 4, 8, 8), np.int16))
    with pytest.raises(ImageReadError, match="10 bands"):
        ds.read_raw(0)


def test_folds_outside_one_to_five_are_refused(miniature, tmp_path):
    import shutil

    from geovision.errors import DataError

    root = tmp_path / "pastis"
    shutil.copytree(miniature("pastis_r"), root)
    meta = root / "PASTIS-R" / "metadata.geojson"
    content = json.loads(meta.read_text())
    content["features"][0]["properties"]["Fold"] = 0
    meta.write_text(json.dumps(content))
    with pytest.raises(DataError, match="folds \\[0\\]"):
        S2.build_df(root)


def test_listed_by_the_cli_and_partitions():
    import subprocess
    import sys

    from geovision_assets.partitions import dataset_partitions

    names = ("pastis_r", "pastis_r_s1a", "pastis_r_s1d", "synthetic_temporal")
    assert set(names) <= set(dataset_partitions.get_partition_keys())
    out = subprocess.run([sys.executable, "-m", "geovision.cli", "datasets", "list"],
                         capture_output=True, text=True, check=True).stdout
    lines = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert "10 bands  19 classes  time series" in lines["pastis_r"]
    assert "3 bands  19 classes  time series" in lines["pastis_r_s1d"]
    assert "4 bands  4 classes  time series" in lines["synthetic_temporal"]
    assert "time series" not in lines["synthetic"]
