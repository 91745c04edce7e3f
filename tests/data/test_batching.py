"""Whole-batch shard loading gives the same batches, in the same order, as per-sample loading."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader

from geovision.data.datasets.synthetic import SyntheticClassification, SyntheticSegmentation
from geovision.data.shards.batching import batch_loader
from geovision.data.shards.hdf import HdfDataset, write_hdf_splits
from geovision.data.shards.streaming import StreamingGeoDataset, write_streaming_splits


@pytest.mark.parametrize("dataset_cls", [SyntheticClassification, SyntheticSegmentation])
@pytest.mark.parametrize("kind", ["hdf", "mds"])
def test_batches_equal_the_map_style_loader(dataset_cls, kind, synthetic_root, tmp_path):
    source = dataset_cls(synthetic_root, split="val")
    if kind == "hdf":
        written = write_hdf_splits(dataset_cls, synthetic_root, tmp_path, splits=("val",),
                                           progress=False)["val"]
        reader = HdfDataset(written.path, source.sample_transform)
    else:
        written = write_streaming_splits(dataset_cls, synthetic_root, tmp_path, splits=("val",),
                                                 progress=False)["val"]
        reader = StreamingGeoDataset(str(written.path), source.sample_transform)
        assert reader._layouts is not None  # fixed-size columns: read as views of the shards
    expected = list(DataLoader(source, batch_size=16, shuffle=True,
                               generator=torch.Generator().manual_seed(5)))
    batches = list(batch_loader(reader, 16, shuffle=True, seed=5))
    assert len(batches) == len(expected) == 3  # 39 samples: 16 + 16 + 7
    for got, want in zip(batches, expected, strict=True):
        for part in range(3):
            assert torch.equal(got[part], want[part])
    ordered = list(batch_loader(reader, 16, shuffle=False, seed=0, drop_last=True))
    assert len(ordered) == 2
    assert ordered[0][2].tolist() == source.split_df["df_idx"].tolist()[:16]
