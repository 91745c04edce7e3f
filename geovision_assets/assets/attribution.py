"""attribution_report: Integrated Gradients maps of the trained model on test images."""


from dagster import AssetExecutionContext, DataVersion, MaterializeResult, asset

from geovision_assets import metadata as md
from geovision_assets.assets.training import load_model_record, trained_model
from geovision_assets.partitions import dataset_and_recipe, dataset_recipe_partitions
from geovision_assets.resources import GeovisionHome

NUM_IMAGES = 6


@asset(partitions_def=dataset_recipe_partitions, deps=[trained_model], code_version="1",
       group_name="analysis", kinds={"captum"})
def attribution_report(context: AssetExecutionContext, home: GeovisionHome) -> MaterializeResult:
    """Which pixels and bands drove the model's predictions on the first test images."""
    from geovision.analysis.attribution import attribution_report as make_report
    from geovision.data.acquire import load_index
    from geovision.data.registry import get_dataset
    from geovision.data.transforms import ScaleNormalize
    from geovision.experiment.train import load_module
    from geovision.hashing import sha256_file
    from geovision.paths import dataset_root

    dataset, recipe = dataset_and_recipe(context.partition_key)
    root = home.root()
    record = load_model_record(root, dataset, recipe)
    dataset_cls = get_dataset(dataset)
    test_set = dataset_cls(dataset_root(dataset, root), df=load_index(dataset, root),
                           split="test", image_transform=ScaleNormalize(
                               record["means"], record["std_devs"], dataset_cls.SCALE))
    module = load_module(record["checkpoint"])
    report = make_report(module.model, test_set, root / "attribution" / dataset / recipe,
                         num_images=NUM_IMAGES)
    return MaterializeResult(
        data_version=DataVersion(sha256_file(report.grid_png)),
        metadata={
            "grid": md.png(report.grid_png, "Integrated Gradients on test images"),
            "path": md.path(report.grid_png),
            "df_idx": report.df_idx,
            "predicted": report.predicted,
            "actual": report.actual,
            "band_importance": report.band_importance,
            "max_convergence_delta": report.convergence_delta,
            **md.provenance(checkpoint=record["checkpoint"], config_hash=record["config_hash"]),
        },
    )
