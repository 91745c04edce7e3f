"""Several region-feature datasets as one DataLoader, padded and masked by num_boxes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from geovision.features.arrow_io import write_region_dataset
from geovision.features.loader import load_region_features


@pytest.fixture()
def two_datasets(tmp_path: Path, make_records):
    a = make_records([4, 1, 4], num_objects=4, feature_dim=6, seed=1, prefix="a")
    b = make_records([6, 0], num_objects=6, feature_dim=6, seed=2, prefix="b")
    return (write_region_dataset(a, tmp_path / "a", 4, 6, info={}),
            write_region_dataset(b, tmp_path / "b", 6, 6, info={}), a + b)


def test_batches_pad_and_mask_by_num_boxes(two_datasets):
    path_a, path_b, rows = two_datasets
    batches = list(load_region_features([path_a, path_b], batch_size=4))
    assert [len(b["img_id"]) for b in batches] == [4, 1]
    first = batches[0]
    assert first["img_id"] == ["a0", "a1", "a2", "b0"]
    assert first["visual_feats"].shape == (4, 6, 6)  # padded to the longest row (6 slots)
    assert first["visual_pos"].shape == (4, 6, 4)
    assert first["visual_feats"].dtype == torch.float32
    assert first["visual_attention_mask"].tolist() == [
        [1, 1, 1, 1, 0, 0], [1, 0, 0, 0, 0, 0], [1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]]
    assert first["num_boxes"].tolist() == [4, 1, 4, 6]
    np.testing.assert_array_equal(first["visual_feats"][1, :1].numpy(),
                                  rows[1]["roi_features"][:1])
    assert torch.count_nonzero(first["visual_feats"][1, 1:]) == 0
    np.testing.assert_array_equal(first["visual_pos"][3].numpy(), rows[3]["normalized_boxes"])
    assert first["visual_pos"].min() >= 0 and first["visual_pos"].max() <= 1
    last = batches[1]
    assert last["img_id"] == ["b1"] and last["visual_attention_mask"].sum() == 0


def test_mask_follows_num_boxes_not_the_stored_values(tmp_path: Path, make_records):
    rows = make_records([2], num_objects=3, feature_dim=4)
    rows[0]["roi_features"][2] = 5.0  # junk in a padding slot must stay out
    path = write_region_dataset(rows, tmp_path / "junk", 3, 4, info={})
    batch = next(iter(load_region_features(path)))
    assert batch["visual_attention_mask"].tolist() == [[1, 1, 0]]
    assert torch.count_nonzero(batch["visual_feats"][0, 2]) == 0


def test_shuffle_is_seeded(two_datasets):
    path_a, path_b, _ = two_datasets
    order = [load_region_features([path_a, path_b], batch_size=5, shuffle=True, seed=s)
             for s in (0, 0, 1)]
    ids = [next(iter(loader))["img_id"] for loader in order]
    assert ids[0] == ids[1] and sorted(ids[0]) == ["a0", "a1", "a2", "b0", "b1"]
    assert ids[0] != ids[2]


def test_different_feature_widths_are_refused(tmp_path: Path, make_records):
    a = write_region_dataset(make_records([1], 2, 4), tmp_path / "a", 2, 4, info={})
    b = write_region_dataset(make_records([1], 2, 8), tmp_path / "b", 2, 8, info={})
    with pytest.raises(ValueError, match="different feature widths"):
        load_region_features([a, b])
