"""region_features: LXMERT / VisualBERT region features of every image in a dataset."""

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
from geovision_assets.resources import DetectorWeights, GeovisionHome


@asset(partitions_def=dataset_partitions, deps=[dataset_index], code_version="1",
       group_name="features", kinds={"pytorch", "arrow"}, pool="gpu",
       check_specs=[AssetCheckSpec("shapes_and_ranges", asset="region_features")])
def region_features(context: AssetExecutionContext, home: GeovisionHome, s3: S3Resource,
                    weights: DetectorWeights) -> MaterializeResult:
    """Bottom-up-attention region features (boxes, pooled features, labels) per image, as an
    Arrow dataset that LXMERT and VisualBERT loaders read directly."""
    from geovision.hashing import hash_directory
    from geovision.pipeline import extract_features

    layout = home.layout()
    sync = home.synced(s3)
    sync.fetch(layout.dataset(context.partition_key), layout.index(context.partition_key))
    features = extract_features(context.partition_key, layout.home, weights=weights.weights(),
                                full_size=weights.full_size)
    result = features.extraction
    if result.random_weights:
        context.log.warning("No detector weights configured (resource `weights`): these "
                            "features come from RANDOM weights and only exercise the pipeline.")
    return MaterializeResult(
        data_version=DataVersion(hash_directory(result.path)),
        metadata={
            "path": md.path(result.path),
            **sync.publish(result.path),
            "num_images": result.num_images,
            "num_objects": result.num_objects,
            "feature_dim": result.feature_dim,
            "mean_num_boxes": result.mean_num_boxes,
            "weights": ("RANDOM (no weights configured)" if result.random_weights
                        else str(result.weights)),
            "images_per_second": round(result.images_per_second, 2),
            **md.provenance(index_df_hash=features.index_df_hash,
                            precision=result.precision, device=result.device),
        },
        check_results=[AssetCheckResult(
            check_name="shapes_and_ranges", passed=not features.problems,
            metadata={"problems": "\n".join(features.problems) or "none"})],
    )
