"""attribution_report: six attribution methods on the trained model's first test images."""

from dagster import AssetExecutionContext, DataVersion, MaterializeResult, MetadataValue, asset
from dagster_aws.s3 import S3Resource

from geovision_assets import metadata as md
from geovision_assets.assets.training import trained_model
from geovision_assets.partitions import dataset_and_recipe, dataset_recipe_partitions
from geovision_assets.resources import GeovisionHome


@asset(partitions_def=dataset_recipe_partitions, deps=[trained_model], code_version="2",
       group_name="analysis", kinds={"pytorch"})
def attribution_report(context: AssetExecutionContext, home: GeovisionHome,
                       s3: S3Resource) -> MaterializeResult:
    """Integrated Gradients, Guided Backprop, Grad-CAM, LIME, Kernel SHAP and feature
    visualisation maps, with deletion/insertion AUC, randomisation and band importance."""
    from geovision.hashing import sha256_file
    from geovision.pipeline import explain_model, load_model_record

    dataset, recipe = dataset_and_recipe(context.partition_key)
    sync = home.synced(s3)
    sync.fetch_model(dataset, recipe)
    report = explain_model(dataset, recipe, home.root(), progress=False)
    record = load_model_record(dataset, recipe, home.root())
    figures = {f"maps_{name}": md.png(path, name.replace("_", " "))
               for name, path in report.figures.items() if not name.endswith("_bands")}
    figures.update({f"bands_{name[:-6]}": md.png(path, f"{name[:-6]} per band")
                    for name, path in report.figures.items() if name.endswith("_bands")})
    return MaterializeResult(
        data_version=DataVersion(sha256_file(report.out_dir / "report.json")),
        metadata={
            "summary": MetadataValue.md(report.summary_md.read_text()),
            "metrics": md.table(report.metrics.round(4)),
            **figures,
            "path": md.path(report.out_dir),
            **sync.publish(report.out_dir),
            "df_idx": MetadataValue.json(report.df_idx),
            "predicted": MetadataValue.json(report.predicted),
            "actual": MetadataValue.json(report.actual),
            "band_importance": MetadataValue.json(report.band_importance),
            **md.provenance(checkpoint=str(record.checkpoint), config_hash=record.config_hash),
        },
    )
