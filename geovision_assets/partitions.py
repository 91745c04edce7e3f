"""Partitions: one per registered dataset, one per recipe file, and their product."""

from __future__ import annotations

import warnings

from dagster import (
    BetaWarning,
    DynamicPartitionsDefinition,
    MultiPartitionsDefinition,
    MultiToSingleDimensionPartitionMapping,
    StaticPartitionsDefinition,
)

from geovision.data.registry import list_datasets
from geovision.models.port import list_ports

dataset_partitions = StaticPartitionsDefinition(list_datasets())
recipe_partitions = DynamicPartitionsDefinition(name="recipe")
dataset_recipe_partitions = MultiPartitionsDefinition(
    {"dataset": dataset_partitions, "recipe": recipe_partitions})

# A model partition (dataset x recipe) reads the dataset assets of its `dataset` dimension.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", BetaWarning)  # stable in use; only its label says beta
    by_dataset = MultiToSingleDimensionPartitionMapping(partition_dimension_name="dataset")


def dataset_and_recipe(partition_key: object) -> tuple[str, str]:
    """(dataset, recipe) from a `dataset x recipe` partition key."""
    keys = partition_key.keys_by_dimension  # type: ignore[attr-defined]
    return keys["dataset"], keys["recipe"]


# One satellite scene per partition, `<provider>:<scene key>`, added by the satellite sensors.
satellite_scene_partitions = DynamicPartitionsDefinition(name="satellite_scene")
# A scene prediction: one recipe's model over one scene.
scene_recipe_partitions = MultiPartitionsDefinition(
    {"recipe": recipe_partitions, "scene": satellite_scene_partitions})
with warnings.catch_warnings():
    warnings.simplefilter("ignore", BetaWarning)
    by_scene = MultiToSingleDimensionPartitionMapping(partition_dimension_name="scene")


def scene_and_recipe(partition_key: object) -> tuple[str, str]:
    """(scene, recipe) from a `scene x recipe` partition key."""
    keys = partition_key.keys_by_dimension  # type: ignore[attr-defined]
    return keys["scene"], keys["recipe"]

# One ported weights file per port recipe, `<our model>.<source>` (geovision.models.port).
port_partitions = StaticPartitionsDefinition(list_ports())
