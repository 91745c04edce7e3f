"""image_statistics and eda_report: exact per-image statistics, then a look at the data."""


import json

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


def statistics_dir(home, name: str):
    return home / "statistics" / name


@asset(partitions_def=dataset_partitions, deps=[dataset_index], code_version="1",
       group_name="statistics", kinds={"numpy", "parquet"},
       check_specs=[AssetCheckSpec("finite_and_counts_add_up", asset="image_statistics"),
                    AssetCheckSpec("rows_match_index", asset="image_statistics")])
def image_statistics(context: AssetExecutionContext, home: GeovisionHome) -> MaterializeResult:
    """Exact per-image, per-band statistics joined to the df; per-split aggregates."""
    import pandas as pd

    from geovision.data.acquire import load_index
    from geovision.data.registry import get_dataset
    from geovision.data.statistics import (
        check_statistics,
        compute_image_statistics,
        means_and_std_devs,
        split_statistics,
    )
    from geovision.hashing import hash_dataframe
    from geovision.io.atomic import atomic_file
    from geovision.paths import dataset_root

    name = context.partition_key
    root = home.root()
    dataset_cls = get_dataset(name)
    df = load_index(name, root)
    stats = compute_image_statistics(dataset_cls, dataset_root(name, root), df)
    table = stats.table
    out = statistics_dir(root, name)
    with atomic_file(out / "per_image.parquet") as tmp:
        table.to_parquet(tmp, index=True)
    bands = dataset_cls.BANDS
    aggregates = {}
    for split in ("train", "val", "test", "all"):
        agg = split_statistics(table, split, bands)
        aggregates[split] = {"count": agg.count.tolist(), "mean": agg.mean.tolist(),
                             "std": agg.std.tolist(), "min": agg.min.tolist(),
                             "max": agg.max.tolist()}
    means, stds = means_and_std_devs(table, bands, split="train", scale=dataset_cls.SCALE)
    summary = {"bands": list(bands), "train_means": list(map(float, means)),
               "train_std_devs": list(map(float, stds)), "splits": aggregates,
               "index_df_hash": hash_dataframe(df)}
    with atomic_file(out / "summary.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=1) + "\n")
    problems = check_statistics(table, bands)
    band_table = pd.DataFrame({"band": bands, "train_mean": means, "train_std": stds,
                               "dataset_MEANS": dataset_cls.MEANS,
                               "dataset_STD_DEVS": dataset_cls.STD_DEVS})
    return MaterializeResult(
        data_version=DataVersion(hash_dataframe(table)),
        metadata={
            "path": md.path(out / "per_image.parquet"),
            "summary": md.path(out / "summary.json"),
            "num_images": len(table),
            "skipped": len(stats.skipped),
            "train_band_statistics": md.table(band_table.set_index("band")),
            **md.provenance(index_df_hash=summary["index_df_hash"]),
        },
        check_results=[
            AssetCheckResult(check_name="finite_and_counts_add_up", passed=not problems,
                             metadata={"problems": "\n".join(problems) or "none"}),
            AssetCheckResult(check_name="rows_match_index",
                             passed=len(table) + len(stats.skipped) == len(df),
                             metadata={"rows": len(table), "index_rows": len(df)}),
        ],
    )
