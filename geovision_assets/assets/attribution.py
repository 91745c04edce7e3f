"""attribution_report: Integrated Gradients maps of the trained model on test images."""

from dagster import AssetExecutionContext, DataVersion, MaterializeResult, MetadataValue, asset

from geovision_assets import metadata as md
from geovision_assets.assets.training import trained_model
from geovision_assets.partitions import dataset_and_recipe, dataset_recipe_partitions
from geovision_assets.resources import GeovisionHome


@asset(partitions_def=dataset_recipe_partitions, deps=[trained_model], code_version="1",
       group_name="analysis", kinds={"captum"})
def attribution_report(context: AssetExecutionContext, home: GeovisionHome) -> MaterializeResult:
    """Which pixels and bands drove the model's predictions on the first test images."""
    from geovision.hashing import sha256_file
    from geovision.pipeline import explain_model, load_model_record

    dataset, recipe = dataset_and_recipe(context.partition_key)
    report = explain_model(dataset, recipe, home.root())
    record = load_model_record(dataset, recipe, home.root())
    return MaterializeResult(
        data_version=DataVersion(sha256_file(report.grid_png)),
        metadata={
            "grid": md.png(report.grid_png, "Integrated Gradients on test images"),
            "path": md.path(report.grid_png),
            "df_idx": MetadataValue.json(report.df_idx),
            "predicted": MetadataValue.json(report.predicted),
            "actual": MetadataValue.json(report.actual),
            "explained": MetadataValue.json(report.explained),
            "band_importance": MetadataValue.json(report.band_importance),
            "max_convergence_delta": report.convergence_delta,
            **md.provenance(checkpoint=str(record.checkpoint), config_hash=record.config_hash),
        },
    )
