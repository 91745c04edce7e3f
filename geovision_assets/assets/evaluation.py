"""model_evaluation: test-split metrics and a confusion matrix of the trained model."""

from dagster import AssetExecutionContext, DataVersion, MaterializeResult, asset
from dagster_aws.s3 import S3Resource

from geovision_assets import metadata as md
from geovision_assets.assets.training import trained_model
from geovision_assets.partitions import dataset_and_recipe, dataset_recipe_partitions
from geovision_assets.resources import GeovisionHome


@asset(partitions_def=dataset_recipe_partitions, deps=[trained_model], code_version="1",
       group_name="training", kinds={"pytorch", "torchmetrics"})
def model_evaluation(context: AssetExecutionContext, home: GeovisionHome,
                     s3: S3Resource) -> MaterializeResult:
    """Evaluate the recorded checkpoint on the test split in one process: loss, the recipe's
    metrics and (for supervised models) the confusion matrix."""
    from geovision.pipeline import evaluate_model

    dataset, recipe = dataset_and_recipe(context.partition_key)
    sync = home.synced(s3)
    sync.fetch_model(dataset, recipe)
    result = evaluate_model(dataset, recipe, home.root())
    evaluation, record = result.evaluation, result.record
    metadata = {
        **{key: float(value) for key, value in evaluation.metrics.items()},
        "num_samples": evaluation.num_samples,
        "checkpoint": md.path(evaluation.checkpoint),
        "metrics_file": md.path(evaluation.metrics_path),
        **sync.publish(record.run_dir),
        **md.provenance(config_hash=record.config_hash,
                        checkpoint_sha256=record.checkpoint_sha256),
    }
    if evaluation.confusion is not None:
        metadata["confusion_matrix"] = md.png(evaluation.confusion_png,
                                              f"Test split: {evaluation.confusion_caption}")
        metadata["confusion_matrix_csv"] = md.path(evaluation.confusion_csv)
        metadata["confusion_table"] = md.table(evaluation.confusion)
    return MaterializeResult(data_version=DataVersion(result.data_version), metadata=metadata)
