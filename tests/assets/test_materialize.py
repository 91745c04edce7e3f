"""Every asset materialized with an ephemeral instance, and its outputs checked."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import pandas as pd
import pytest
import yaml
from dagster import AssetKey, DagsterInstance

from geovision.data.statistics import band_column
from geovision_assets.demo import run_demo

DATASET_KEYS = ("raw_dataset", "dataset_index", "image_statistics", "eda_report", "hdf_shards",
                "streaming_shards", "region_features")
MODEL_KEYS = ("trained_model", "model_evaluation", "attribution_report")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("graph")
    recipes = tmp / "recipes"
    recipes.mkdir()
    recipe = yaml.safe_load(Path("recipes/demo.yaml").read_text())
    recipe["trainer"]["max_epochs"] = 3
    recipe["name"] = "quick"
    (recipes / "quick.yaml").write_text(yaml.safe_dump(recipe))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GEOVISION_HOME", str(tmp / "home"))
        mp.setenv("GEOVISION_RECIPES", str(recipes))
        instance = DagsterInstance.ephemeral()
        result = run_demo(instance, recipe="quick")
        yield instance, result, tmp / "home"


def test_every_run_and_check_succeeded(demo):
    _, result, _ = demo
    assert all(run.success for run in result.runs)
    evaluations = [e for run in result.runs for e in run.get_asset_check_evaluations()]
    names = {e.check_name for e in evaluations}
    assert {"files_exist", "splits_disjoint_and_complete", "finite_and_counts_add_up",
            "rows_match_index", "hdf_reads_back_equal", "streaming_reads_back_equal",
            "shapes_and_ranges"} <= names
    assert all(e.passed for e in evaluations), [e.check_name for e in evaluations if not e.passed]


def test_every_asset_has_a_data_version_and_provenance(demo):
    instance, _, _ = demo
    for key in DATASET_KEYS + MODEL_KEYS:
        event = instance.get_latest_materialization_event(AssetKey(key))
        assert event is not None, key
        materialization = event.asset_materialization
        assert len(materialization.tags["dagster/data_version"]) == 64, key
        assert "packages" in materialization.metadata, key
        expected = "synthetic" if key in DATASET_KEYS else "synthetic|quick"
        assert materialization.partition == expected, key


def test_dataset_outputs(demo):
    _, _, home = demo
    index = pd.read_parquet(home / "index" / "synthetic.parquet")
    counts = index["split"].value_counts().to_dict()
    assert len(index) == 400 and counts == {"train": 281, "val": 39, "test": 80}
    manifest = json.loads((home / "manifests" / "synthetic.sha256.json").read_text())
    assert "labels.csv" in manifest and len(manifest) == 400 * 2 + 2
    table = pd.read_parquet(home / "statistics" / "synthetic" / "per_image.parquet")
    assert len(table) == 400 and (table[band_column("red", "count")] == 64 * 64).all()
    summary = json.loads((home / "statistics" / "synthetic" / "summary.json").read_text())
    assert summary["train_means"] == pytest.approx([0.4687, 0.4439, 0.3505, 0.4180], abs=1e-4)
    for split, count in counts.items():
        with h5py.File(home / "shards" / "synthetic" / "hdf" / f"{split}.h5") as f:
            assert len(f["df_idx"]) == count
        assert (home / "shards" / "synthetic" / "mds" / split / "index.json").is_file()


def test_region_features(demo):
    instance, _, home = demo
    from geovision.features.loader import load_region_features

    meta = instance.get_latest_materialization_event(
        AssetKey("region_features")).asset_materialization.metadata
    assert meta["weights"].value.startswith("RANDOM")
    assert meta["num_images"].value == 400 and meta["num_objects"].value == 36
    loader = load_region_features([home / "features" / "synthetic"], batch_size=8)
    batch = next(iter(loader))
    assert batch["visual_feats"].shape == (8, 36, meta["feature_dim"].value)
    assert batch["visual_pos"].shape == (8, 36, 4)


def test_eda_report(demo):
    instance, _, home = demo
    assert (home / "eda" / "synthetic" / "summary.md").is_file()
    meta = instance.get_latest_materialization_event(
        AssetKey("eda_report")).asset_materialization.metadata
    assert "vegetation" in meta["summary"].value
    assert any(key.startswith("plot_") for key in meta)


def test_model_outputs(demo):
    instance, result, home = demo
    record = result.summary
    assert record.test_metrics["test_accuracy"] > record.chance_accuracy + 0.3
    metrics = pd.read_csv(Path(record.run_dir) / "metrics.csv")
    assert metrics["epoch"].tolist() == [0, 1, 2]
    assert (home / "attribution" / "synthetic" / "quick" / "integrated_gradients.png").is_file()
    meta = instance.get_latest_materialization_event(
        AssetKey("trained_model")).asset_materialization.metadata
    assert meta["config_hash"].value == record.config_hash
    assert meta["plot_loss"].value.startswith("loss")
    assert meta["random_seed"].value == 0


def test_model_evaluation(demo):
    instance, result, _ = demo
    record = result.summary
    meta = instance.get_latest_materialization_event(
        AssetKey("model_evaluation")).asset_materialization.metadata
    # The evaluation of the recorded checkpoint repeats the test metrics of the training run.
    assert meta["test_accuracy"].value == pytest.approx(record.test_metrics["test_accuracy"])
    assert meta["num_samples"].value == 80
    assert meta["confusion_matrix"].value.startswith(
        "Test split: confusion matrix (rows: true class")
    assert "data:image/png;base64," in meta["confusion_matrix"].value
    confusion = pd.read_csv(meta["confusion_matrix_csv"].value, index_col=0)
    assert confusion.to_numpy().sum() == 80 and len(confusion) == 4
