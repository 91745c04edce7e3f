"""Deterministic split assignment: the same labels, fractions and seed give the same splits."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from geovision.errors import ConfigError, DataError

SPLITS = ("train", "val", "trainval", "test", "all")
ROW_SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class SplitSettings:
    """What a df builder splits by, as one value: the seed and the fractions held out for
    validation and test. A dataset with official splits uses only the parts its docstring
    names (usually `val_split`, to carve val from the official train)."""

    random_seed: int
    val_split: float
    test_split: float


def check_fractions(val_split: float, test_split: float) -> None:
    """Refuse fractions that cannot make three splits."""
    for name, value in (("val_split", val_split), ("test_split", test_split)):
        if not 0 <= value < 1:
            raise ConfigError(f"{name}={value} must be in [0, 1).")
    total = val_split + test_split
    if not 0 < total < 1:
        raise ConfigError(f"val_split + test_split = {total} must lie in (0, 1): choose fractions "
                          "that leave both a training set and at least one held-out split.")


def check_split_name(split: str) -> None:
    if split not in SPLITS:
        raise ConfigError(f"Unknown split {split!r}; choose one of {', '.join(SPLITS)}.")


def random_splits(n: int, val_split: float, test_split: float, random_seed: int) -> np.ndarray:
    """Assign each of `n` rows to train / val / test at random with exact counts."""
    return stratified_splits(np.zeros(n, dtype=np.int64), val_split, test_split, random_seed)


def stratified_splits(labels: Sequence, val_split: float, test_split: float,
                      random_seed: int) -> np.ndarray:
    """Assign rows to train / val / test so each label keeps the same proportions.

    Per label (in sorted order), rows are shuffled with one seeded generator and the first
    round(n * test_split) go to test, the next round(n * val_split) to val, the rest to train.
    """
    check_fractions(val_split, test_split)
    labels = np.asarray(labels)
    out = np.full(len(labels), "train", dtype=object)
    rng = np.random.default_rng(random_seed)
    for label in np.unique(labels):
        rows = np.flatnonzero(labels == label)
        rows = rows[rng.permutation(len(rows))]
        n_test = int(round(len(rows) * test_split))
        n_val = int(round(len(rows) * val_split))
        out[rows[:n_test]] = "test"
        out[rows[n_test:n_test + n_val]] = "val"
    return out


def rows_in_split(split_column: Sequence[str], split: str) -> np.ndarray:
    """Boolean mask of the rows that belong to `split` (trainval = train + val, all = every row)."""
    check_split_name(split)
    column = np.asarray(split_column, dtype=object)
    if split == "all":
        return np.ones(len(column), dtype=bool)
    if split == "trainval":
        return (column == "train") | (column == "val")
    return column == split


def spatial_block_splits(groups: Sequence, val_split: float, test_split: float,
                         random_seed: int, strata: Sequence | None = None) -> np.ndarray:
    """Assign whole groups (scene, tile, city, geographic block) to train / val / test.

    Neighbouring chips are alike, so chips of one group sharing train and test would leak; here
    every row of a group gets the group's split. The fractions count groups, not rows: with
    groups of similar size (tiles of one survey) the row fractions follow. Groups are taken in
    sorted order and split like labels in `stratified_splits`; with `strata` (one value per row,
    constant within a group, e.g. the city of each tile) the groups are stratified by it, so
    every city sends tiles to every split.
    """
    check_fractions(val_split, test_split)
    groups = np.asarray(groups, dtype=object).astype(str)
    names, inverse = np.unique(groups, return_inverse=True)
    if strata is None:
        group_strata = np.zeros(len(names), dtype=np.int64)
    else:
        strata = np.asarray(strata, dtype=object).astype(str)
        if len(strata) != len(groups):
            raise DataError(f"strata has {len(strata)} values for {len(groups)} rows; give one "
                            "stratum per row.")
        group_strata = np.empty(len(names), dtype=object)
        for g in range(len(names)):
            values = np.unique(strata[inverse == g])
            if len(values) != 1:
                raise DataError(f"group {names[g]!r} spans strata {values.tolist()}; a group "
                                "must lie in one stratum (e.g. a tile in one city).")
            group_strata[g] = values[0]
    group_splits = stratified_splits(group_strata, val_split, test_split, random_seed)
    return group_splits[inverse]


def carve_val(official: Sequence[str], val_split: float, random_seed: int,
              labels: Sequence | None = None, groups: Sequence | None = None) -> np.ndarray:
    """Official split assignments with `val_split` of the official train rows moved to val.

    For datasets whose published split has no validation set. The carving is seeded,
    stratified by `labels` when given, and moves whole `groups` (e.g. all views of one
    location) when given. Official val and test rows are kept; with val_split = 0 the official
    split is returned unchanged.
    """
    official = np.asarray(official, dtype=object)
    bad = sorted(set(official.tolist()) - set(ROW_SPLITS))
    if bad:
        raise DataError(f"official split values {bad}; use {ROW_SPLITS}.")
    out = official.copy()
    if val_split == 0:
        return out
    train = np.flatnonzero(official == "train")
    strata = None if labels is None else np.asarray(labels, dtype=object)[train]
    if groups is None:
        carved = stratified_splits(np.zeros(len(train)) if strata is None else strata.astype(str),
                                   val_split, 0.0, random_seed)
    else:
        carved = spatial_block_splits(np.asarray(groups, dtype=object)[train], val_split, 0.0,
                                      random_seed, strata=strata)
    out[train[carved == "val"]] = "val"
    return out
