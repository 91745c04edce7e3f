"""image_statistics: exact per-image statistics and per-split aggregates."""

from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    DataVersion,
    MaterializeResult,
    MetadataValue,
    asset,
)
from dagster_aws.s3 import S3Resource

from geovision_assets import metadata as md
from geovision_assets.assets.datasets import dataset_index
from geovision_assets.partitions import dataset_partitions
from geovision_assets.resources import GeovisionHome


@asset(partitions_def=dataset_partitions, deps=[dataset_index], code_version="1",
       group_name="statistics", kinds={"numpy", "parquet"},
       check_specs=[AssetCheckSpec("finite_and_counts_add_up", asset="image_statistics"),
                    AssetCheckSpec("rows_match_index", asset="image_statistics")])
def image_statistics(context: AssetExecutionContext, home: GeovisionHome,
                     s3: S3Resource) -> MaterializeResult:
    """Exact per-image, per-band statistics joined to the df; per-split aggregates; the train
    split's means and standard deviations (used to normalise training)."""
    import pandas as pd

    from geovision.data.registry import get_dataset
    from geovision.pipeline import compute_statistics

    name = context.partition_key
    layout = home.layout()
    sync = home.synced(s3)
    sync.fetch(layout.dataset(name), layout.index(name))
    stats = compute_statistics(name, layout.home)
    dataset_cls = get_dataset(name)
    bands = pd.DataFrame({"train_mean": stats.means, "train_std": stats.std_devs,
                          "class_MEANS": dataset_cls.MEANS,
                          "class_STD_DEVS": dataset_cls.STD_DEVS},
                         index=pd.Index(dataset_cls.BANDS, name="band"))
    return MaterializeResult(
        data_version=DataVersion(stats.data_version),
        metadata={
            "path": md.path(stats.table_path),
            "summary": md.path(stats.summary_path),
            "num_images": stats.num_images,
            **sync.publish(layout.statistics(name)),
            "skipped": MetadataValue.json([list(s) for s in stats.skipped]),
            "train_band_statistics": md.table(bands),
            **md.provenance(index_df_hash=stats.index_df_hash),
        },
        check_results=[
            AssetCheckResult(check_name="finite_and_counts_add_up", passed=not stats.problems,
                             metadata={"problems": "\n".join(stats.problems) or "none"}),
            AssetCheckResult(check_name="rows_match_index",
                             passed=stats.num_images + len(stats.skipped) == stats.index_rows,
                             metadata={"rows": stats.num_images,
                                       "index_rows": stats.index_rows}),
        ],
    )


@asset(partitions_def=dataset_partitions, deps=[image_statistics], code_version="1",
       group_name="statistics", kinds={"matplotlib"})
def eda_report(context: AssetExecutionContext, home: GeovisionHome,
               s3: S3Resource) -> MaterializeResult:
    """A first look at the data: class balance per split, image sizes, band histograms, mean
    spectral signature per class and, for segmentation, coverage and object sizes."""
    from geovision.hashing import sha256_file
    from geovision.pipeline import write_eda_report

    layout = home.layout()
    sync = home.synced(s3)
    sync.fetch(layout.statistics(context.partition_key))
    report = write_eda_report(context.partition_key, layout.home)
    return MaterializeResult(
        data_version=DataVersion(sha256_file(report.markdown_path)),
        metadata={
            "summary": MetadataValue.md(report.markdown),
            "path": md.path(report.out_dir),
            **sync.publish(report.out_dir),
            **{f"plot_{name}": md.png(path, name) for name, path in report.images.items()},
            **md.provenance(),
        },
    )
