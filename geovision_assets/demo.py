"""`make demo`: materialize the whole graph for the built-in dataset and the demo recipe, and
train the segmentation recipe (a U-Net with the Potts loss term) on its segmentation twin.

Runs in this process against the Dagster instance in `$DAGSTER_HOME`, so `make ui` shows every
materialization, its metadata and its checks afterwards.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from dagster import DagsterInstance, ExecuteInProcessResult, MultiPartitionKey, materialize

from geovision.experiment.model_record import ModelRecord
from geovision_assets.assets.datasets import dataset_index, raw_dataset
from geovision_assets.assets.evaluation import model_evaluation
from geovision_assets.assets.shards import hdf_shards
from geovision_assets.assets.statistics import image_statistics
from geovision_assets.assets.training import trained_model
from geovision_assets.definitions import (
    DATASET_ASSETS,
    MODEL_ASSETS,
    SCENE_ASSETS,
    default_resources,
)
from geovision_assets.partitions import recipe_partitions, satellite_scene_partitions

DATASET = "synthetic"
RECIPE = "demo"
SCENE = "generated:demo"  # a generated scene when no satellite provider is configured
SEGMENTATION = ("synthetic_segmentation", "unet_potts")  # (dataset, recipe)
# What training and evaluating the segmentation recipe needs (it reads HDF shards); the rest
# of the graph is shown on the classification dataset.
SEGMENTATION_DATASET_ASSETS = [raw_dataset, dataset_index, image_statistics, hdf_shards]
SEGMENTATION_MODEL_ASSETS = [trained_model, model_evaluation]


@dataclass
class DemoResult:
    record: ModelRecord  # the trained (dataset, recipe) model, as the pipeline recorded it
    seconds: float
    home: Path
    runs: list[ExecuteInProcessResult]
    segmentation: ModelRecord | None = None  # the segmentation recipe's model


def _add_recipe(instance: DagsterInstance, resources: dict, recipe: str) -> None:
    if recipe not in instance.get_dynamic_partitions(recipe_partitions.name):
        resources["recipes"].recipe_path(recipe)  # a clear error if the file is missing
        instance.add_dynamic_partitions(recipe_partitions.name, [recipe])


def run_demo(instance: DagsterInstance, dataset: str = DATASET, recipe: str = RECIPE,
             scene: str = SCENE,
             segmentation: tuple[str, str] | None = SEGMENTATION) -> DemoResult:
    """Train and evaluate the `segmentation` (dataset, recipe) model, then materialize every
    dataset asset for `dataset`, every model asset for (`dataset`, `recipe`) and the recipe's
    predictions over `scene`; return the runs and what a person wants to see first."""
    from geovision.pipeline import load_model_record

    resources = default_resources()
    _add_recipe(instance, resources, recipe)
    started = time.perf_counter()
    runs = []
    if segmentation is not None:
        seg_dataset, seg_recipe = segmentation
        _add_recipe(instance, resources, seg_recipe)
        runs.append(materialize(SEGMENTATION_DATASET_ASSETS, partition_key=seg_dataset,
                                instance=instance, resources=resources))
        seg_key = MultiPartitionKey({"dataset": seg_dataset, "recipe": seg_recipe})
        runs.append(materialize(SEGMENTATION_MODEL_ASSETS, partition_key=str(seg_key),
                                instance=instance, resources=resources))
    runs.append(materialize(DATASET_ASSETS, partition_key=dataset, instance=instance,
                            resources=resources))
    model_key = MultiPartitionKey({"dataset": dataset, "recipe": recipe})
    runs.append(materialize(MODEL_ASSETS, partition_key=str(model_key), instance=instance,
                            resources=resources))
    if scene not in instance.get_dynamic_partitions(satellite_scene_partitions.name):
        instance.add_dynamic_partitions(satellite_scene_partitions.name, [scene])
    scene_key = MultiPartitionKey({"recipe": recipe, "scene": scene})
    runs.append(materialize(SCENE_ASSETS, partition_key=str(scene_key), instance=instance,
                            resources=resources))
    home = resources["home"].root()
    return DemoResult(record=load_model_record(dataset, recipe, home),
                      seconds=round(time.perf_counter() - started, 1), home=home, runs=runs,
                      segmentation=load_model_record(*segmentation, home)
                      if segmentation is not None else None)


def main() -> int:
    if not os.environ.get("DAGSTER_HOME"):
        print("Set DAGSTER_HOME to keep the demo's history (make demo does this).",
              file=sys.stderr)
        return 2
    result = run_demo(DagsterInstance.get())
    record = result.record
    accuracy = record.test_metrics.get("test_accuracy")
    print("\n=== geovision demo ===")
    print(f"materialized in {result.seconds} s; artifacts under {result.home}")
    print(f"run folder:  {record.run_dir}")
    print(f"checkpoint:  {record.checkpoint}")
    print(f"test accuracy {accuracy:.3f} vs chance {record.chance_accuracy:.3f} "
          "(always predicting the most frequent class)")
    print(json.dumps(record.test_metrics, indent=1))
    if result.segmentation is not None:
        seg = result.segmentation
        print(f"segmentation: {seg.recipe} on {seg.dataset}, run folder {seg.run_dir}")
        print(json.dumps(seg.test_metrics, indent=1))
    print("Open the UI on this history:  make ui   (then http://127.0.0.1:3000)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
