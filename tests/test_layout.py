"""Layout: every artifact path comes from one place, and user-given names stay inside it."""

import pytest

from geovision.layout import SOURCE_FORMATS, SOURCES, Layout


def test_paths_follow_the_documented_tree(tmp_path):
    layout = Layout(tmp_path)
    assert layout.home == tmp_path.resolve()
    assert layout.dataset("eurosat") == layout.home / "datasets" / "eurosat"
    assert layout.index("eurosat") == layout.home / "index" / "eurosat.parquet"
    assert layout.statistics_table("d") == layout.home / "statistics" / "d" / "per_image.parquet"
    assert layout.statistics_summary("d") == layout.statistics("d") / "summary.json"
    assert layout.shards("eurosat", "mds") == layout.home / "shards" / "eurosat" / "mds"
    assert layout.runs("p", "n") == layout.home / "runs" / "p" / "n"
    assert layout.model_record("d", "r") == layout.home / "models" / "d" / "r.json"
    assert layout.mds_cache("d", "train") == layout.home / "cache" / "mds" / "d" / "train"
    assert layout.mds_cache("d", "val", run="abc") == layout.mds_cache("d") / "abc" / "val"


def test_a_config_source_names_its_shard_folder(tmp_path):
    layout = Layout(tmp_path)
    assert layout.shards_for_source("d", "files") is None
    assert layout.shards_for_source("d", "hdf") == layout.shards("d", "hdf")
    assert layout.shards_for_source("d", "streaming") == layout.shards("d", "mds")
    assert set(SOURCE_FORMATS) == set(SOURCES) - {"files"}  # every shard source has a format
    with pytest.raises(ValueError, match="data source 'zarr'"):
        layout.shards_for_source("d", "zarr")


def test_streaming_caches_differ_per_remote_location(tmp_path):
    layout = Layout(tmp_path)
    first = layout.streaming_cache("s3://bucket/a/train")
    assert first.parent == layout.home / "cache" / "streaming"
    assert first.name.startswith("train-")
    assert first != layout.streaming_cache("s3://bucket/b/train")


@pytest.mark.parametrize("name", ["../up", "a/b", "", ".."])
def test_names_cannot_leave_the_tree(tmp_path, name):
    with pytest.raises(ValueError, match="cannot be used as a folder name"):
        Layout(tmp_path).dataset(name)
