"""`make demo`: materialize the whole graph for the built-in dataset and the demo recipe.

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


@dataclass
class DemoResult:
    record: ModelRecord  # the trained (dataset, recipe) model, as the pipeline recorded it
    seconds: float
    home: Path
    runs: list[ExecuteInProcessResult]


def run_demo(instance: DagsterInstance, dataset: str = DATASET, recipe: str = RECIPE,
             scene: str = SCENE) -> DemoResult:
    """Materialize every dataset asset for `dataset`, every model asset for
    (`dataset`, `recipe`), then the recipe's predictions over `scene`; return the runs and
    what a person wants to see first."""
    from geovision.pipeline import load_model_record

    resources = default_resources()
    if recipe not in instance.get_dynamic_partitions(recipe_partitions.name):
        resources["recipes"].recipe_path(recipe)  # a clear error if the file is missing
        instance.add_dynamic_partitions(recipe_partitions.name, [recipe])
    started = time.perf_counter()
    runs = [materialize(DATASET_ASSETS, partition_key=dataset, instance=instance,
                        resources=resources)]
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
                      seconds=round(time.perf_counter() - started, 1), home=home, runs=runs)


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
    print("Open the UI on this history:  make ui   (then http://127.0.0.1:3000)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
