"""hdf_shards and streaming_shards: one file (or MDS folder) per split, verified on write."""


from pathlib import Path

from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    DataVersion,
    MaterializeResult,
    asset,
)

from geovision_assets import metadata as md
from geovision_assets.assets.datasets import dataset_index
from geovision_assets.partitions import dataset_partitions
from geovision_assets.resources import GeovisionHome

SPLITS = ("train", "val", "test")
VERIFY_SAMPLES = 16


def shards_dir(home: Path, name: str, kind: str) -> Path:
    return home / "shards" / name / kind


def _verify(dataset_cls, root, df, open_reader) -> tuple[int, int]:
    """Compare up to VERIFY_SAMPLES evenly spaced records per split with the source files."""
    import numpy as np
    from geovision.data.shards.verify import compare_with_source

    checked = mismatched = 0
    for split in SPLITS:
        source = dataset_cls(root, df=df, split=split)
        if len(source) == 0:
            continue
        indices = np.unique(np.linspace(0, len(source) - 1, VERIFY_SAMPLES).astype(int)).tolist()
        mismatched += len(compare_with_source(open_reader(split, source), source, indices))
        checked += len(indices)
    return checked, mismatched


def _result(kind: str, results: dict, checked: int, mismatched: int, out: Path,
            df_hash: str) -> MaterializeResult:
    from geovision.hashing import sha256_bytes

    version = sha256_bytes("".join(f"{s}:{r.sha256}" for s, r in sorted(results.items()))
                           .encode())
    return MaterializeResult(
        data_version=DataVersion(version),
        metadata={
            "path": md.path(out),
            **{f"num_{split}": r.count for split, r in results.items()},
            **{f"bytes_{split}": r.num_bytes for split, r in results.items()},
            **md.provenance(index_df_hash=df_hash),
        },
        check_results=[AssetCheckResult(
            check_name=f"{kind}_reads_back_equal", passed=checked > 0 and mismatched == 0,
            metadata={"records_compared": checked, "mismatches": mismatched})],
    )


@asset(partitions_def=dataset_partitions, deps=[dataset_index], code_version="1",
       group_name="shards", kinds={"hdf5"},
       check_specs=[AssetCheckSpec("hdf_reads_back_equal", asset="hdf_shards")])
def hdf_shards(context: AssetExecutionContext, home: GeovisionHome) -> MaterializeResult:
    """One HDF5 file per split (LZF, one chunk per image), read back and compared."""
    from geovision.data.shards.hdf import HdfDataset

    from geovision.data.acquire import load_index
    from geovision.data.registry import get_dataset
    from geovision.hashing import hash_dataframe
    from geovision.paths import dataset_root

    name, root = context.partition_key, home.root()
    dataset_cls, df = get_dataset(name), load_index(name, root)
    data_root = dataset_root(name, root)
    out = shards_dir(root, name, "hdf")
    results = dataset_cls.write_to_hdf(data_root, out, df=df, splits=SPLITS)
    checked, mismatched = _verify(dataset_cls, data_root, df, lambda split, source: HdfDataset(
        out / f"{split}.h5", source.sample_transform))
    return _result("hdf", results, checked, mismatched, out, hash_dataframe(df))


@asset(partitions_def=dataset_partitions, deps=[dataset_index], code_version="1",
       group_name="shards", kinds={"mosaicml"},
       check_specs=[AssetCheckSpec("streaming_reads_back_equal", asset="streaming_shards")])
def streaming_shards(context: AssetExecutionContext, home: GeovisionHome) -> MaterializeResult:
    """One MosaicML streaming (MDS) folder per split, read back and compared."""
    from geovision.data.shards.streaming import StreamingGeoDataset

    from geovision.data.acquire import load_index
    from geovision.data.registry import get_dataset
    from geovision.hashing import hash_dataframe
    from geovision.paths import dataset_root

    name, root = context.partition_key, home.root()
    dataset_cls, df = get_dataset(name), load_index(name, root)
    data_root = dataset_root(name, root)
    out = shards_dir(root, name, "mds")
    results = dataset_cls.write_to_streaming(data_root, out, df=df, splits=SPLITS)
    cache = root / "cache" / "mds" / name / context.run.run_id
    checked, mismatched = _verify(
        dataset_cls, data_root, df,
        lambda split, source: StreamingGeoDataset(str(out / split), source.sample_transform,
                                                  cache_dir=cache / split))
    return _result("streaming", results, checked, mismatched, out, hash_dataframe(df))
