"""trained_model: one Lightning run per (dataset, recipe) partition."""


import json
from pathlib import Path

from dagster import (
    AssetDep,
    AssetExecutionContext,
    DataVersion,
    MaterializeResult,
    MetadataValue,
    asset,
)

from geovision_assets import metadata as md
from geovision_assets.assets.shards import hdf_shards, shards_dir, streaming_shards
from geovision_assets.assets.statistics import image_statistics, statistics_dir
from geovision_assets.partitions import by_dataset, dataset_and_recipe, dataset_recipe_partitions
from geovision_assets.resources import GeovisionHome, RecipeLibrary


def model_record_path(home: Path, dataset: str, recipe: str) -> Path:
    """Where the partition's latest trained model is recorded (run folder, checkpoint, etc.)."""
    return home / "models" / dataset / f"{recipe}.json"


def load_model_record(home: Path, dataset: str, recipe: str) -> dict:
    path = model_record_path(home, dataset, recipe)
    if not path.is_file():
        raise FileNotFoundError(f"No trained model for dataset={dataset} recipe={recipe} "
                                f"({path}): materialize trained_model for that partition first.")
    return json.loads(path.read_text())


@asset(partitions_def=dataset_recipe_partitions, code_version="1", group_name="training",
       deps=[AssetDep(image_statistics, partition_mapping=by_dataset),
             AssetDep(hdf_shards, partition_mapping=by_dataset),
             AssetDep(streaming_shards, partition_mapping=by_dataset)],
       pool="gpu", kinds={"pytorch", "lightning"})
def trained_model(context: AssetExecutionContext, home: GeovisionHome,
                  recipes: RecipeLibrary) -> MaterializeResult:
    """Train the recipe on the dataset, normalised with the train split's exact statistics,
    reading the shards the recipe names; test the best checkpoint."""
    from geovision.data.acquire import load_index
    from geovision.data.registry import get_dataset
    from geovision.data.transforms import ScaleNormalize
    from geovision.experiment.config import load_config
    from geovision.experiment.plots import plot_curves
    from geovision.experiment.rundir import read_metrics
    from geovision.experiment.train import train
    from geovision.hashing import hash_dataframe, sha256_file
    from geovision.io.atomic import atomic_file
    from geovision.paths import dataset_root

    dataset, recipe = dataset_and_recipe(context.partition_key)
    root = home.root()
    recipe_path = recipes.recipe_path(recipe)
    config = load_config(recipe_path, dataset_name=dataset)
    dataset_cls = get_dataset(dataset)
    df = load_index(dataset, root)
    summary_path = statistics_dir(root, dataset) / "summary.json"
    summary = json.loads(summary_path.read_text())
    means, stds = summary["train_means"], summary["train_std_devs"]
    source = config.data.source
    shards = {"hdf": shards_dir(root, dataset, "hdf"),
              "streaming": shards_dir(root, dataset, "mds")}.get(source)
    upstream = {"index_df_hash": hash_dataframe(df),
                "statistics_sha256": sha256_file(summary_path),
                "recipe_sha256": sha256_file(recipe_path)}
    result = train(config, home=root, root=dataset_root(dataset, root), df=df,
                   image_transform=ScaleNormalize(means, stds, dataset_cls.SCALE),
                   shards_dir=shards, provenance={"upstream": upstream,
                                                  "normalisation": {"means": means,
                                                                    "std_devs": stds}})
    plots = plot_curves(read_metrics(result.run_dir), result.run_dir / "plots")
    record = {"run_dir": str(result.run_dir), "checkpoint": str(result.best_checkpoint),
              "config_hash": config.config_hash(), "means": means, "std_devs": stds,
              "test_metrics": result.test_metrics, "chance_accuracy": result.chance_accuracy}
    with atomic_file(model_record_path(root, dataset, recipe)) as tmp:
        tmp.write_text(json.dumps(record, indent=1) + "\n")
    metadata = {
        "run_dir": md.path(result.run_dir),
        "checkpoint": md.path(result.best_checkpoint),
        "epochs": result.epochs,
        **{k: float(v) for k, v in result.test_metrics.items()},
        "config": MetadataValue.json(config.model_dump(mode="json")),
        "config_hash": config.config_hash(),
        "random_seed": config.random_seed,
        "data_source": source,
        **{f"plot_{p.stem}": md.png(p, p.stem) for p in plots},
        **md.provenance(upstream=upstream),
    }
    if result.chance_accuracy is not None:
        metadata["chance_accuracy"] = result.chance_accuracy
    return MaterializeResult(data_version=DataVersion(sha256_file(result.best_checkpoint)),
                             metadata=metadata)
