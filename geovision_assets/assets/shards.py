"""hdf_shards and streaming_shards: one file (or MDS folder) per split, verified on write."""

from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    DataVersion,
    MaterializeResult,
    asset,
)
from dagster_aws.s3 import S3Resource

from geovision_assets import metadata as md
from geovision_assets.assets.datasets import dataset_index
from geovision_assets.partitions import dataset_partitions
from geovision_assets.resources import ArtifactSync, GeovisionHome


def _result(check_name: str, shards, sync: ArtifactSync) -> MaterializeResult:
    """The materialization of verified shards, published first when the root is remote."""
    return MaterializeResult(
        data_version=DataVersion(shards.data_version),
        metadata={
            "path": md.path(shards.path),
            **sync.publish(shards.path),
            **{f"num_{split}": r.count for split, r in shards.results.items()},
            **{f"bytes_{split}": r.num_bytes for split, r in shards.results.items()},
            **md.provenance(index_df_hash=shards.index_df_hash),
        },
        check_results=[AssetCheckResult(
            check_name=check_name,
            passed=(shards.records_compared > 0 and shards.mismatches == 0
                    and not shards.count_problems),
            metadata={"records_compared": shards.records_compared,
                      "mismatches": shards.mismatches,
                      "counts_vs_index": "\n".join(shards.count_problems) or "equal"})],
    )


@asset(partitions_def=dataset_partitions, deps=[dataset_index], code_version="1",
       group_name="shards", kinds={"hdf5"},
       check_specs=[AssetCheckSpec("hdf_reads_back_equal", asset="hdf_shards")])
def hdf_shards(context: AssetExecutionContext, home: GeovisionHome,
               s3: S3Resource) -> MaterializeResult:
    """One HDF5 file per split (uncompressed, one chunk per image), read back and compared."""
    from geovision.pipeline import write_hdf_shards

    layout = home.layout()
    sync = home.synced(s3)
    sync.fetch(layout.dataset(context.partition_key), layout.index(context.partition_key))
    return _result("hdf_reads_back_equal",
                   write_hdf_shards(context.partition_key, layout.home), sync)


@asset(partitions_def=dataset_partitions, deps=[dataset_index], code_version="1",
       group_name="shards", kinds={"mosaicml"},
       check_specs=[AssetCheckSpec("streaming_reads_back_equal", asset="streaming_shards")])
def streaming_shards(context: AssetExecutionContext, home: GeovisionHome,
                     s3: S3Resource) -> MaterializeResult:
    """One MosaicML streaming (MDS) folder per split, read back and compared."""
    from geovision.layout import Layout
    from geovision.pipeline import write_streaming_shards

    layout = Layout(home.root())
    sync = home.synced(s3)
    sync.fetch(layout.dataset(context.partition_key), layout.index(context.partition_key))
    cache = layout.mds_cache(context.partition_key, run=context.run.run_id)
    return _result("streaming_reads_back_equal",
                   write_streaming_shards(context.partition_key, layout.home, cache_dir=cache),
                   sync)
