"""Split strategies: random, stratified, spatial blocks, official with a carved val set."""

from __future__ import annotations

import numpy as np
import pytest

from geovision.data.splits import (
    carve_val,
    random_splits,
    spatial_block_splits,
    stratified_splits,
)


def test_random_and_stratified_are_seeded_and_exact():
    labels = np.repeat(["a", "b", "c"], [50, 30, 20])
    first = stratified_splits(labels, 0.1, 0.2, 7)
    assert np.array_equal(first, stratified_splits(labels, 0.1, 0.2, 7))
    assert not np.array_equal(first, stratified_splits(labels, 0.1, 0.2, 8))
    for label, n in (("a", 50), ("b", 30), ("c", 20)):
        rows = first[labels == label]
        assert (rows == "test").sum() == round(n * 0.2)
        assert (rows == "val").sum() == round(n * 0.1)
    assert sorted(np.unique(random_splits(10, 0.2, 0.3, 0), return_counts=True)[1]) == [2, 3, 5]


def test_spatial_blocks_keep_every_group_in_one_split():
    groups = np.repeat([f"tile_{i:02d}" for i in range(20)], 9)  # 20 tiles of 9 chips
    splits = spatial_block_splits(groups, 0.2, 0.3, 3)
    per_group = {g: set(splits[groups == g]) for g in np.unique(groups)}
    assert all(len(s) == 1 for s in per_group.values())
    counts = {s: sum(1 for v in per_group.values() if v == {s}) for s in ("train", "val", "test")}
    assert counts == {"train": 10, "val": 4, "test": 6}
    assert np.array_equal(splits, spatial_block_splits(groups, 0.2, 0.3, 3))
    assert not np.array_equal(splits, spatial_block_splits(groups, 0.2, 0.3, 4))
    # row order does not matter: a group's split depends on the group, not on where it sits
    order = np.random.default_rng(0).permutation(len(groups))
    assert np.array_equal(spatial_block_splits(groups[order], 0.2, 0.3, 3), splits[order])


def test_spatial_blocks_stratified_by_city():
    cities = np.repeat(["austin", "vienna"], 10)
    tiles = np.array([f"{c}{i}" for c, i in zip(cities, list(range(10)) * 2, strict=True)])
    splits = spatial_block_splits(tiles, 0.2, 0.2, 0, strata=cities)
    for city in ("austin", "vienna"):
        values, counts = np.unique(splits[cities == city], return_counts=True)
        assert dict(zip(values, counts, strict=True)) == {"test": 2, "train": 6, "val": 2}
    with pytest.raises(ValueError, match="spans strata"):
        spatial_block_splits(["t1", "t1"], 0.2, 0.2, 0, strata=["austin", "vienna"])
    with pytest.raises(ValueError, match="one stratum per row"):
        spatial_block_splits(["t1", "t2"], 0.2, 0.2, 0, strata=["austin"])


@pytest.mark.parametrize(("val", "test"), [(0.6, 0.5), (0.0, 0.0), (-0.1, 0.3)])
def test_spatial_blocks_refuse_bad_fractions(val, test):
    with pytest.raises(ValueError):
        spatial_block_splits(["a", "b"], val, test, 0)


def test_carve_val_moves_only_official_train_rows():
    official = np.array(["train"] * 40 + ["test"] * 10, dtype=object)
    labels = np.array(["x", "y"] * 25)
    split = carve_val(official, 0.25, 1, labels=labels)
    assert (split[40:] == "test").all()
    assert (split[:40] == "val").sum() == 10
    assert ((split == "val") & (labels == "x")).sum() == 5  # stratified: 5 of the 20 x rows
    assert np.array_equal(split, carve_val(official, 0.25, 1, labels=labels))
    assert not np.array_equal(split, carve_val(official, 0.25, 2, labels=labels))
    assert np.array_equal(carve_val(official, 0.0, 1), official)
    with pytest.raises(ValueError, match="holdout"):
        carve_val(["train", "holdout"], 0.1, 0)


def test_carve_val_keeps_groups_together():
    official = np.array(["train"] * 30 + ["test"] * 6, dtype=object)
    groups = np.array([f"loc{i // 3}" for i in range(36)])
    split = carve_val(official, 0.2, 5, groups=groups)
    for group in np.unique(groups):
        assert len(set(split[groups == group])) == 1
    assert (split == "val").sum() == 6  # 2 of the 10 train locations, 3 views each
