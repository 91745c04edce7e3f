"""Deterministic split assignment: the same labels, fractions and seed give the same splits."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

SPLITS = ("train", "val", "trainval", "test", "all")
ROW_SPLITS = ("train", "val", "test")


def check_fractions(val_split: float, test_split: float) -> None:
    """Refuse fractions that cannot make three splits."""
    for name, value in (("val_split", val_split), ("test_split", test_split)):
        if not 0 <= value < 1:
            raise ValueError(f"{name}={value} must be in [0, 1).")
    total = val_split + test_split
    if not 0 < total < 1:
        raise ValueError(f"val_split + test_split = {total} must lie in (0, 1): choose fractions "
                         "that leave both a training set and at least one held-out split.")


def check_split_name(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"Unknown split {split!r}; choose one of {', '.join(SPLITS)}.")


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
