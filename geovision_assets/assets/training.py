"""trained_model: one Lightning run per (dataset, recipe) partition."""

from dagster import (
    AssetDep,
    AssetExecutionContext,
    DataVersion,
    MaterializeResult,
    MetadataValue,
    PipesSubprocessClient,
    asset,
)
from dagster_aws.s3 import S3Resource

from geovision_assets import metadata as md
from geovision_assets.assets.shards import hdf_shards, streaming_shards
from geovision_assets.assets.statistics import image_statistics
from geovision_assets.partitions import by_dataset, dataset_and_recipe, dataset_recipe_partitions
from geovision_assets.resources import GeovisionHome, RecipeLibrary


@asset(partitions_def=dataset_recipe_partitions, code_version="2", group_name="training",
       deps=[AssetDep(image_statistics, partition_mapping=by_dataset),
             AssetDep(hdf_shards, partition_mapping=by_dataset),
             AssetDep(streaming_shards, partition_mapping=by_dataset)],
       pool="gpu", kinds={"pytorch", "lightning"})
def trained_model(context: AssetExecutionContext, home: GeovisionHome, s3: S3Resource,
                  recipes: RecipeLibrary, pipes: PipesSubprocessClient) -> MaterializeResult:
    """Train the recipe on the dataset, normalised with the train split's exact statistics,
    reading the shards the recipe names; evaluate the chosen checkpoint on the test split.

    One device trains in this process; with trainer.devices > 1 torchrun runs one process
    per device through Dagster Pipes, and rank 0 reports the materialization."""
    from geovision.experiment.config import load_config
    from geovision.models.port import port_folder
    from geovision.pipeline import train_model

    dataset, recipe = dataset_and_recipe(context.partition_key)
    recipe_path = recipes.recipe_path(recipe)
    config = load_config(recipe_path, dataset_name=dataset)
    source, port = config.data.source, config.model.weights_port
    layout = home.layout()
    sync = home.synced(s3)
    sync.fetch(layout.dataset(dataset), layout.index(dataset), layout.statistics(dataset),
               *([layout.shards(dataset, "hdf")] if source == "hdf" else []),
               *([port_folder(port, layout.home)] if port is not None else []))
    # MDS shards on a remote root are streamed from S3 into a local cache, not fetched whole.
    shards = sync.streamed(layout.shards(dataset, "mds")) if source == "streaming" else None
    launched = []

    def launch_through_pipes(command: list[str]) -> None:
        launched.append(pipes.run(context=context, command=command))

    model = train_model(dataset, recipe_path, layout.home, launcher=launch_through_pipes,
                        shards=shards)
    record = model.record
    metadata = {
        "run_dir": md.path(record.run_dir),
        **sync.publish(record.run_dir, model.record_path),
        "checkpoint": md.path(record.checkpoint),
        "epochs": record.epochs,
        "devices": record.devices,
        **{key: float(value) for key, value in record.test_metrics.items()},
        "config": MetadataValue.json(model.config.model_dump(mode="json")),
        "config_hash": record.config_hash,
        "random_seed": model.config.random_seed,
        "data_source": model.config.data.source,
        **{f"plot_{p.stem}": md.png(p, p.stem) for p in model.plots},
        **md.provenance(upstream=model.upstream),
    }
    if record.chance_accuracy is not None:
        metadata["chance_accuracy"] = record.chance_accuracy
    if launched:
        reported = launched[0].get_materialize_result(implicit_materialization=False)
        return MaterializeResult(data_version=reported.data_version,
                                 metadata={**reported.metadata, **metadata})
    return MaterializeResult(data_version=DataVersion(record.checkpoint_sha256),
                             metadata=metadata)
