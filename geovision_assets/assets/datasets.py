"""raw_dataset and dataset_index: get the files, then fix the samples and their splits."""


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
from geovision_assets.partitions import dataset_partitions
from geovision_assets.resources import GeovisionHome


@asset(partitions_def=dataset_partitions, code_version="1", group_name="datasets",
       kinds={"python", "files"})
def raw_dataset(context: AssetExecutionContext, home: GeovisionHome,
                s3: S3Resource) -> MaterializeResult:
    """The dataset's raw files (downloaded and verified, or generated) and their sha256
    manifest."""
    from geovision.data.acquire import acquire_dataset

    layout = home.layout()
    sync = home.synced(s3)
    files = (layout.dataset(context.partition_key), layout.manifest(context.partition_key))
    sync.fetch(*files)  # a published copy is verified and kept, not downloaded again
    raw = acquire_dataset(context.partition_key, layout.home)
    published = sync.publish(*files)
    return MaterializeResult(
        data_version=DataVersion(raw.data_version),
        metadata={
            "root": md.path(raw.root),
            "manifest": md.path(raw.manifest_path),
            "num_files": raw.num_files,
            "num_bytes": raw.num_bytes,
            **published,
            **md.provenance(),
        },
    )


@asset(partitions_def=dataset_partitions, deps=[raw_dataset], code_version="1",
       group_name="datasets", kinds={"pandas", "parquet"},
       check_specs=[AssetCheckSpec("files_exist", asset="dataset_index"),
                    AssetCheckSpec("splits_disjoint_and_complete", asset="dataset_index")])
def dataset_index(context: AssetExecutionContext, home: GeovisionHome,
                  s3: S3Resource) -> MaterializeResult:
    """The dataset's df: one row per sample with its label or mask and its split."""
    from dataclasses import asdict

    import pandas as pd

    from geovision.data.acquire import build_index
    from geovision.data.registry import get_dataset

    name = context.partition_key
    dataset_cls = get_dataset(name)
    layout = home.layout()
    sync = home.synced(s3)
    sync.fetch(layout.dataset(name), layout.manifest(name))
    index = build_index(name, layout.home)
    df = index.df
    root = layout.dataset(name)
    path_columns = ["image_path"] + (["mask_path"] if "mask_path" in df else [])
    missing = [p for c in path_columns for p in df[c] if not (root / p).is_file()]
    split_counts = df["split"].value_counts().reindex(["train", "val", "test"], fill_value=0)
    counts = {f"num_{split}": int(n) for split, n in split_counts.items()}
    meta = {"path": md.path(index.path), "num_rows": len(df), **counts,
            **sync.publish(index.path),
            "df_preview": md.table(df.head(8))}
    if dataset_cls.TASK == "classification":
        balance = pd.crosstab(df["label_str"], df["split"])
        meta["class_balance"] = md.table(balance)
    seeds = asdict(dataset_cls.split_settings())  # the settings build_index used
    return MaterializeResult(
        data_version=DataVersion(index.data_version),
        metadata=meta | md.provenance(split_settings=seeds),
        check_results=[
            AssetCheckResult(check_name="files_exist", passed=not missing,
                             metadata={"missing": len(missing),
                                       "first_missing": str(missing[:3])}),
            AssetCheckResult(check_name="splits_disjoint_and_complete",
                             passed=bool(split_counts.sum() == len(df)
                                         and df.index.is_unique and split_counts.min() > 0),
                             metadata=counts),
        ],
    )
