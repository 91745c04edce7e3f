"""The time series dataset through the asset graph: dataset assets, then the temporal recipe's
model and its evaluation, with an ephemeral instance."""

from __future__ import annotations

from pathlib import Path

import h5py
import pytest
import yaml
from dagster import DagsterInstance, MultiPartitionKey, materialize

from geovision.layout import Layout
from geovision_assets.assets.datasets import dataset_index, raw_dataset
from geovision_assets.assets.evaluation import model_evaluation
from geovision_assets.assets.shards import hdf_shards, streaming_shards
from geovision_assets.assets.statistics import eda_report, image_statistics
from geovision_assets.assets.training import trained_model
from geovision_assets.definitions import default_resources
from geovision_assets.partitions import recipe_partitions

DATASET = "synthetic_temporal"


def test_temporal_recipe_through_the_graph(tmp_path):
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    recipe = yaml.safe_load(Path("recipes/temporal.yaml").read_text())
    recipe["trainer"]["max_epochs"] = 2
    recipe["name"] = "quick_temporal"
    (recipes / "quick_temporal.yaml").write_text(yaml.safe_dump(recipe))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GEOVISION_HOME", str(tmp_path / "home"))
        mp.setenv("GEOVISION_RECIPES", str(recipes))
        instance = DagsterInstance.ephemeral()
        resources = default_resources()
        data = materialize([raw_dataset, dataset_index, image_statistics, eda_report,
                            hdf_shards, streaming_shards], partition_key=DATASET,
                           instance=instance, resources=resources)
        assert data.success
        checks = data.get_asset_check_evaluations()
        assert checks and all(c.passed for c in checks), [c.check_name for c in checks
                                                          if not c.passed]
        instance.add_dynamic_partitions(recipe_partitions.name, ["quick_temporal"])
        key = MultiPartitionKey({"dataset": DATASET, "recipe": "quick_temporal"})
        model = materialize([trained_model, model_evaluation], partition_key=str(key),
                            instance=instance, resources=resources)
        assert model.success
    layout = Layout(tmp_path / "home")
    with h5py.File(layout.shards(DATASET, "hdf") / "train.h5") as f:
        assert f["image"].shape[1:] == (10, 4, 32, 32)  # padded to the longest series
        assert f["days"].shape == f["valid"].shape == (120, 10)
        assert 6 * 120 <= int(f["valid"][:].sum()) < 10 * 120
    evaluation = yaml.safe_load(next(layout.home.rglob("test_metrics.yaml")).read_text())
    assert evaluation["num_samples"] == 40
    assert 0 <= evaluation["metrics"]["test_jaccard"] <= 1
