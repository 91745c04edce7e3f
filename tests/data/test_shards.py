"""HDF5 and MDS shards: written atomically, read back as exactly the map-style tuples."""

from __future__ import annotations

import gc
import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from geovision.data.datasets.synthetic import SyntheticClassification, SyntheticSegmentation
from geovision.data.image_io import ImageReadError
from geovision.data.shards.hdf import HdfDataset, write_hdf, write_hdf_splits
from geovision.data.shards.streaming import (
    StreamingGeoDataset,
    write_streaming,
    write_streaming_splits,
)
from geovision.data.shards.verify import compare_with_source, record_digest, sample_indices
from geovision.hashing import hash_dataframe

DATASETS = [SyntheticClassification, SyntheticSegmentation]


@pytest.fixture()
def streaming_readers():
    """Open StreamingGeoDatasets and release their shared memory when the test ends."""
    opened: list[StreamingGeoDataset] = []

    def open_reader(*args, **kwargs) -> StreamingGeoDataset:
        opened.append(StreamingGeoDataset(*args, **kwargs))
        return opened[-1]

    yield open_reader
    opened.clear()
    gc.collect()


def assert_same_sample(got: tuple, want: tuple) -> None:
    assert len(got) == len(want) == 3
    assert torch.equal(got[0], want[0]) and got[0].dtype == want[0].dtype
    if isinstance(want[1], torch.Tensor):
        assert torch.equal(got[1], want[1])
    else:
        assert type(got[1]) is type(want[1]) and got[1] == want[1]
    assert type(got[2]) is int and got[2] == want[2]


def assert_same_batches(reader, dataset, num_workers: int) -> None:
    got = list(DataLoader(reader, batch_size=4, num_workers=num_workers))
    want = list(DataLoader(dataset, batch_size=4, num_workers=0))
    assert len(got) == len(want)
    for a, b in zip(got, want, strict=True):
        for x, y in zip(a, b, strict=True):
            assert torch.equal(x, y)


def open_reader(kind: str, dataset, tmp_path: Path, streaming_readers):
    if kind.startswith("hdf"):
        compression = "lzf" if kind == "hdf_lzf" else None
        result = write_hdf(dataset, tmp_path / "train.h5", compression=compression,
                           progress=False)
        reader = HdfDataset(result.path, dataset.sample_transform)
        direct = reader._open()[0].offsets is not None
        assert direct == (compression is None)  # raw rows are read straight from the file
        return reader
    result = write_streaming(dataset, tmp_path / "train", compression="zstd", size_limit=40_000,
                             progress=False)
    return streaming_readers(str(result.path), dataset.sample_transform,
                             cache_dir=tmp_path / "cache" / "train")


@pytest.mark.parametrize("num_workers", [0, 2])
@pytest.mark.parametrize("kind", ["hdf", "hdf_lzf", "streaming"])
@pytest.mark.parametrize("dataset_cls", DATASETS, ids=lambda c: c.NAME)
def test_readers_equal_the_map_style_dataset(dataset_cls, kind: str, num_workers: int,
                                             small_root: Path, tmp_path: Path,
                                             streaming_readers) -> None:
    dataset = dataset_cls(small_root, split="train")
    reader = open_reader(kind, dataset, tmp_path, streaming_readers)
    assert len(reader) == len(dataset)
    # read in this process first, so workers inherit an open reader and must reopen it
    for index in range(len(dataset)):
        assert_same_sample(reader[index], dataset[index])
    assert_same_sample(reader[-1], dataset[-1])
    with pytest.raises(IndexError):
        reader[len(dataset)]
    assert_same_batches(reader, dataset, num_workers)
    assert compare_with_source(reader, dataset, range(len(dataset))) == []


def test_hdf_layout_attributes_and_determinism(small_root: Path, tmp_path: Path) -> None:
    dataset = SyntheticSegmentation(small_root, split="val")
    first = write_hdf(dataset, tmp_path / "a.h5", compression="lzf", progress=False)
    again = write_hdf(dataset, tmp_path / "b.h5", compression="lzf", progress=False)
    plain = write_hdf(dataset, tmp_path / "c.h5", progress=False)
    assert first.count == len(dataset) and first.sha256 == again.sha256
    assert first.num_bytes == (tmp_path / "a.h5").stat().st_size
    with h5py.File(first.path) as f:
        assert f["image"].shape == (len(dataset), 4, 32, 32)
        assert f["image"].chunks == (1, 4, 32, 32) and f["image"].compression == "lzf"
        assert f["mask"].chunks == (1, 32, 32) and f["mask"].dtype == np.uint8
        assert f["df_idx"][:].tolist() == dataset.split_df["df_idx"].tolist()
    with h5py.File(plain.path) as f:
        assert f["image"].compression is None
    reader = HdfDataset(first.path, None)
    assert reader.attrs["class_names"] == list(SyntheticSegmentation.CLASS_NAMES)
    assert reader.attrs["bands"] == list(SyntheticSegmentation.BANDS)
    assert reader.attrs["means"] == list(SyntheticSegmentation.MEANS)
    assert reader.attrs["std_devs"] == list(SyntheticSegmentation.STD_DEVS)
    assert reader.attrs["df_hash"] == hash_dataframe(dataset.df)
    image, mask, df_idx = reader.read_raw(1)
    raw = dataset.read_raw(1)
    np.testing.assert_array_equal(image, raw[0])
    np.testing.assert_array_equal(mask, raw[1])
    assert df_idx == raw[2]
    with pytest.raises(ValueError, match="compression"):
        write_hdf(dataset, tmp_path / "d.h5", compression="gzip")


def test_streaming_remote_compression_and_size_limit(small_root: Path, tmp_path: Path,
                                                     streaming_readers) -> None:
    dataset = SyntheticClassification(small_root, split="train")
    remote = tmp_path / "bucket" / "train"
    result = write_streaming(dataset, tmp_path / "mds" / "train", remote=str(remote),
                             compression="zstd:7", size_limit=20_000, progress=False)
    index = json.loads((remote / "index.json").read_text())
    assert len(index["shards"]) > 1 and result.remote == str(remote)
    assert all(s["compression"] == "zstd:7" for s in index["shards"])
    assert index["shards"][0]["column_encodings"] == ["int64", "ndarray:uint8:4,32,32", "int64"]
    attributes = json.loads((result.path / "geovision.json").read_text())
    assert attributes["df_hash"] == hash_dataframe(dataset.df)
    assert sorted(p.name for p in remote.iterdir()) == sorted(
        p.name for p in result.path.iterdir())
    cache = tmp_path / "cache" / "train"
    reader = streaming_readers(str(remote), dataset.sample_transform, cache_dir=cache)
    for index in range(len(dataset)):
        assert_same_sample(reader[index], dataset[index])
    assert any(cache.iterdir())
    with pytest.raises(ValueError, match="compression"):
        write_streaming(dataset, tmp_path / "x", compression="lzma", progress=False)
    with pytest.raises(FileNotFoundError, match="index.json"):
        StreamingGeoDataset(str(tmp_path / "nowhere"), None)


def test_write_to_methods_write_one_shard_per_split(small_root: Path, tmp_path: Path) -> None:
    df = SyntheticClassification.build_df(small_root)
    hdf = write_hdf_splits(SyntheticClassification, small_root, tmp_path / "hdf", df=df,
                                               progress=False)
    mds = write_streaming_splits(SyntheticClassification, small_root, tmp_path / "mds", df=df,
                                                     splits=("val", "test"), progress=False,
                                                     remote=str(tmp_path / "remote"))
    sizes = df["split"].value_counts()
    assert {s: r.count for s, r in hdf.items()} == {s: sizes[s] for s in ("train", "val", "test")}
    assert sorted(p.name for p in (tmp_path / "hdf").iterdir()) == ["test.h5", "train.h5",
                                                                    "val.h5"]
    assert {s: r.path for s, r in mds.items()} == {"val": tmp_path / "mds" / "val",
                                                   "test": tmp_path / "mds" / "test"}
    assert (tmp_path / "remote" / "test" / "index.json").is_file()


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_interrupted_writes_leave_nothing_behind(small_copy: Path, tmp_path: Path,
                                                truncate) -> None:
    df = SyntheticClassification.build_df(small_copy)
    dataset = SyntheticClassification(small_copy, df=df, split="train")
    broken = Path(dataset.split_df["image_path"][5])
    truncate(broken)
    out = tmp_path / "out"
    with pytest.raises(ImageReadError, match=str(broken)):
        write_hdf(dataset, out / "train.h5", progress=False)
    with pytest.raises(ImageReadError, match=str(broken)):
        write_streaming(dataset, out / "train", progress=False)
    assert leftovers(out) == []


def test_writers_refuse_wrong_bands_and_mixed_sizes(small_copy: Path, tmp_path: Path,
                                                    write_three_band) -> None:
    df = SyntheticClassification.build_df(small_copy)
    dataset = SyntheticClassification(small_copy, df=df, split="val")
    write_three_band(Path(dataset.split_df["image_path"][1]))
    out = tmp_path / "out"
    with pytest.raises(ImageReadError, match="has 3 bands but the dataset expects 4"):
        write_hdf(dataset, out / "val.h5", progress=False)
    first = dataset.read_raw(0)[0]
    dataset.read_raw = lambda i: (first[:, :16] if i == 2 else first, 0, i)
    with pytest.raises(ValueError, match="one image size and dtype per split"):
        write_streaming(dataset, out / "val", progress=False)
    assert leftovers(out) == []


def test_compare_with_source_finds_altered_records(small_root: Path, tmp_path: Path) -> None:
    dataset = SyntheticClassification(small_root, split="test")
    result = write_hdf(dataset, tmp_path / "test.h5", compression=None, progress=False)
    with h5py.File(result.path, "r+") as f:
        f["image"][2, 0, 0, 0] ^= 1
        f["label"][4] = (f["label"][4] + 1) % 4
    reader = HdfDataset(result.path, dataset.sample_transform)
    assert compare_with_source(reader, dataset, range(len(dataset))) == [2, 4]
    assert compare_with_source(reader, dataset, [len(dataset)]) == [len(dataset)]
    assert record_digest(np.zeros(2, np.uint8), 3, 1) == record_digest(
        np.zeros(2, np.uint8), np.int64(3), 1)
    assert sample_indices(5, 16) == [0, 1, 2, 3, 4]
    picked = sample_indices(100, 10)
    assert len(picked) == 10 and picked[0] == 0 and picked[-1] == 99


def test_hdf_rows_are_copies_unless_views_are_asked_for(small_root: Path,
                                                        tmp_path: Path) -> None:
    dataset = SyntheticClassification(small_root, split="test")
    reader = HdfDataset(write_hdf(dataset, tmp_path / "t.h5", progress=False).path, None)
    image = reader.read_raw(0)[0]
    image[...] = 0  # a writable copy: the stored row stays as it was
    np.testing.assert_array_equal(reader.read_raw(0)[0], dataset.read_raw(0)[0])
    copies = reader.read_raw_batch([2, 0])[0]
    views = reader.read_raw_batch([2, 0], views=True)[0]
    assert all(c.flags.writeable for c in copies) and not any(v.flags.writeable for v in views)
    for got, index in zip(views, [2, 0], strict=True):
        np.testing.assert_array_equal(got, dataset.read_raw(index)[0])


def test_a_missing_image_stops_a_dataset_write_naming_it(small_copy: Path,
                                                         tmp_path: Path) -> None:
    df = SyntheticClassification.build_df(small_copy)
    missing = small_copy / df.loc[df["split"] == "val", "image_path"].iloc[1]
    missing.unlink()
    out = tmp_path / "out"
    with pytest.raises(ImageReadError, match=f"not found: {missing}"):
        write_hdf_splits(SyntheticClassification, small_copy, out, df=df, splits=("val",),
                                             progress=False)
    with pytest.raises(ImageReadError, match=f"not found: {missing}"):
        write_streaming_splits(SyntheticClassification, small_copy, out, df=df, splits=("val",),
                                                   progress=False)
    assert leftovers(out) == []
