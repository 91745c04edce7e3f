"""The code location loads, validates, and stays light (no torch at import)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from dagster import Definitions

from geovision.data.registry import list_datasets
from geovision_assets.definitions import defs
from geovision_assets.partitions import dataset_partitions, dataset_recipe_partitions
from geovision_assets.sensors import new_recipes

EXPECTED = {"raw_dataset", "dataset_index", "image_statistics", "eda_report", "hdf_shards",
            "streaming_shards", "region_features",
            "trained_model", "model_evaluation", "attribution_report", "scene_predictions",
            "ported_weights"}


def test_definitions_validate():
    Definitions.validate_loadable(defs)
    keys = {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}
    assert EXPECTED <= keys


def test_partitions_follow_the_registry():
    assert dataset_partitions.get_partition_keys() == list_datasets()
    assert [d.name for d in dataset_recipe_partitions.partitions_defs] == ["dataset", "recipe"]


def test_model_assets_map_to_their_dataset_partition():
    graph = defs.resolve_asset_graph()
    from dagster import AssetKey, MultiPartitionKey
    from dagster._core.instance import DagsterInstance

    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("recipe", ["demo"])
    node = graph.get(AssetKey("trained_model"))
    parents = {k.to_user_string() for k in node.parent_keys}
    assert {"image_statistics", "hdf_shards", "streaming_shards"} <= parents
    key = MultiPartitionKey({"dataset": "synthetic", "recipe": "demo"})
    mapping = node.assets_def.get_partition_mapping(AssetKey("hdf_shards"))
    upstream = mapping.get_upstream_mapped_partitions_result_for_partitions(
        dataset_recipe_partitions.subset_with_partition_keys([key]),
        dataset_recipe_partitions, dataset_partitions, dynamic_partitions_store=instance)
    assert list(upstream.partitions_subset.get_partition_keys()) == ["synthetic"]


def test_loading_the_code_location_does_not_import_torch():
    code = ("import sys, geovision_assets.definitions; "
            "print('torch' in sys.modules, 'lightning' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "False False"


def test_recipe_sensor_registers_new_valid_recipes(tmp_path):
    from dagster import DagsterInstance, SensorResult, build_sensor_context

    from geovision_assets.resources import RecipeLibrary
    from geovision_assets.sensors import recipe_sensor

    (tmp_path / "good.yaml").write_text(Path("recipes/demo.yaml").read_text())
    (tmp_path / "bad.yaml").write_text("project: p\nname: n\ntask: classification\n")
    instance = DagsterInstance.ephemeral()
    context = build_sensor_context(instance=instance,
                                   resources={"recipes": RecipeLibrary(path=str(tmp_path))})
    result = recipe_sensor(context)
    assert isinstance(result, SensorResult)
    (request,) = result.dynamic_partitions_requests
    assert request.partitions_def_name == "recipe"
    assert list(request.partition_keys) == ["good"]
    instance.add_dynamic_partitions("recipe", ["good"])
    assert new_recipes(["good"], ["good", "b", "a"]) == ["a", "b"]
    assert recipe_sensor(context).__class__.__name__ == "SkipReason"


def test_scene_predictions_sensor_requests_new_pairs_of_marked_trained_recipes(tmp_path):
    import yaml
    from dagster import DagsterInstance, SensorResult, SkipReason, build_sensor_context

    from geovision.layout import Layout
    from geovision_assets.resources import GeovisionHome, RecipeLibrary
    from geovision_assets.sensors import scene_predictions_sensor

    marked = yaml.safe_load(Path("recipes/demo.yaml").read_text())
    unmarked = {k: v for k, v in marked.items() if k != "inference"}
    (tmp_path / "recipes").mkdir()
    (tmp_path / "recipes" / "marked.yaml").write_text(yaml.safe_dump(marked))
    (tmp_path / "recipes" / "plain.yaml").write_text(yaml.safe_dump(unmarked))
    home = tmp_path / "home"
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("recipe", ["marked", "plain"])
    instance.add_dynamic_partitions("satellite_scene", ["generated:a", "inbox:b"])
    context = build_sensor_context(instance=instance, resources={
        "recipes": RecipeLibrary(path=str(tmp_path / "recipes")),
        "home": GeovisionHome(path=str(home))})
    assert isinstance(scene_predictions_sensor(context), SkipReason)  # nothing trained yet
    for recipe in ("marked", "plain"):
        record = Layout(home).model_record("synthetic", recipe)
        record.parent.mkdir(parents=True, exist_ok=True)
        record.write_text("{}")
    result = scene_predictions_sensor(context)
    assert isinstance(result, SensorResult)  # inbox:b is not fetched yet
    assert [r.partition_key for r in result.run_requests] == ["marked|generated:a"]
    context.update_cursor(result.cursor)
    for key in ("b", "c"):
        scene = Layout(home).scene("inbox", key) / "scene.tif"
        scene.parent.mkdir(parents=True)
        scene.write_bytes(b"")
    instance.add_dynamic_partitions("satellite_scene", ["inbox:c"])
    again = scene_predictions_sensor(context)
    assert sorted(r.partition_key for r in again.run_requests) == ["marked|inbox:b",
                                                                   "marked|inbox:c"]
    context.update_cursor(again.cursor)
    assert isinstance(scene_predictions_sensor(context), SkipReason)
