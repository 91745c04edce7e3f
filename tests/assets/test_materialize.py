"""Every asset materialized once, its outputs checked, and the web UI shown them as a user sees it.

The instance lives in a temporary DAGSTER_HOME (SQLite, from dagster.yaml, as `make demo` has
it) so that a dagster-webserver subprocess can serve its history."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import h5py
import pandas as pd
import pytest
import yaml
from dagster import AssetKey, DagsterInstance
from dagster._core.instance.ref import InstanceRef

from geovision.data.statistics import band_column
from geovision_assets.demo import run_demo
from tests.servers import chromium_page, dagster_webserver

DATASET_KEYS = ("raw_dataset", "dataset_index", "image_statistics", "eda_report", "hdf_shards",
                "streaming_shards", "region_features")
MODEL_KEYS = ("trained_model", "model_evaluation", "attribution_report")
METHODS = ("integrated_gradients", "guided_backprop", "grad_cam", "lime", "kernel_shap",
           "feature_visualisation")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("graph")
    recipes = tmp / "recipes"
    recipes.mkdir()
    recipe = yaml.safe_load(Path("recipes/demo.yaml").read_text())
    recipe["trainer"]["max_epochs"] = 3
    recipe["name"] = "quick"
    (recipes / "quick.yaml").write_text(yaml.safe_dump(recipe))
    segmentation = yaml.safe_load(Path("recipes/unet_potts.yaml").read_text())
    segmentation["trainer"]["max_epochs"] = 2
    segmentation["loss"]["potts"]["ramp"] = {"start": 0.5, "end": 1.0}  # the second epoch
    (recipes / "quick_seg.yaml").write_text(yaml.safe_dump(segmentation))
    dagster_home = tmp / "dagster_home"
    dagster_home.mkdir()
    shutil.copy("dagster.yaml", dagster_home / "dagster.yaml")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GEOVISION_HOME", str(tmp / "home"))
        mp.setenv("GEOVISION_RECIPES", str(recipes))
        with DagsterInstance.from_ref(InstanceRef.from_dir(str(dagster_home))) as instance:
            result = run_demo(instance, recipe="quick",
                              segmentation=("synthetic_segmentation", "quick_seg"))
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
    record = result.record
    assert record.test_metrics["test_accuracy"] > record.chance_accuracy + 0.3
    metrics = pd.read_csv(Path(record.run_dir) / "metrics.csv")
    assert metrics["epoch"].tolist() == [0, 1, 2]
    for method in METHODS:
        assert (home / "attribution" / "synthetic" / "quick" / f"{method}.png").is_file()
        assert (home / "attribution" / "synthetic" / "quick" / f"{method}_bands.png").is_file()
    attribution = instance.get_latest_materialization_event(
        AssetKey("attribution_report")).asset_materialization.metadata
    assert "# Attribution report: synthetic (classification)" in attribution["summary"].value
    assert all(f"| {method}" in attribution["metrics"].value for method in METHODS)
    assert "data:image/png;base64," in attribution["maps_grad_cam"].value
    meta = instance.get_latest_materialization_event(
        AssetKey("trained_model")).asset_materialization.metadata
    assert meta["config_hash"].value == record.config_hash
    assert meta["plot_loss"].value.startswith("loss")
    assert meta["random_seed"].value == 0


def test_segmentation_model_trained_with_the_potts_term(demo):
    instance, result, _ = demo
    record = result.segmentation
    assert (record.dataset, record.recipe) == ("synthetic_segmentation", "quick_seg")
    metrics = pd.read_csv(Path(record.run_dir) / "metrics.csv")
    assert metrics["epoch"].tolist() == [0, 1]
    # The ramp (the second half of training) keeps Potts out of the first epoch.
    first, second = metrics.iloc[0], metrics.iloc[1]
    assert first["train_loss"] == pytest.approx(first["train_ce"], rel=1e-6)
    assert second["train_loss"] > second["train_ce"] and second["val_potts"] > 0
    assert {"test_ce", "test_potts", "test_jaccard"} <= set(record.test_metrics)
    for key in ("trained_model", "model_evaluation"):
        events = instance.fetch_materializations(AssetKey(key), limit=10).records
        assert "synthetic_segmentation|quick_seg" in {e.partition_key for e in events}, key


def test_model_evaluation(demo):
    instance, result, _ = demo
    record = result.record
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


def test_scene_predictions_on_the_generated_scene(demo):
    instance, _, home = demo
    event = instance.get_latest_materialization_event(AssetKey("scene_predictions"))
    assert event.asset_materialization.partition == "quick|generated:demo"
    meta = event.asset_materialization.metadata
    assert "data:image/png;base64," in meta["quicklook"].value
    out = home / "predictions" / "quick" / "generated" / "demo"
    assert Path(meta["labels"].value) == out / "labels.tif"
    prediction = json.loads((out / "prediction.json").read_text())
    assert prediction["shape"] == [1024, 1024]
    total = sum(prediction["class_areas_km2"].values())
    assert total == pytest.approx(1024 * 1024 * 100 / 1e6)  # 10 m pixels, all classified
    assert set(prediction["class_areas_km2"]) == {"building", "road", "water", "vegetation"}
    assert meta["class_areas_km2"].value.count("|") > 8


def test_predict_cli_on_the_trained_model(demo, tmp_path):
    _, result, home = demo
    scene = home / "satellite" / "scenes" / "generated" / "demo" / "scene.tif"
    record = home / "models" / "synthetic" / "quick.json"
    run = subprocess.run([sys.executable, "-m", "geovision.cli", "predict", str(record),
                          str(scene), "--out", str(tmp_path / "out"), "--chip-size", "64",
                          "--overlap", "0"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "256 chips" in run.stdout and "red<-red" in run.stdout
    expected = json.loads((home / "predictions" / "quick" / "generated" / "demo"
                           / "prediction.json").read_text())["class_areas_km2"]
    for name, area in expected.items():
        assert f"{name}: {area:.4f} km2" in run.stdout
    missing = run = subprocess.run(
        [sys.executable, "-m", "geovision.cli", "predict", str(record), str(tmp_path / "no.tif"),
         "--out", str(tmp_path / "o2")], capture_output=True, text=True, timeout=300)
    assert missing.returncode != 0 and "no.tif" in (missing.stderr + missing.stdout)


def _events(page, url: str, key: str, partition: str) -> None:
    """Open the Events tab of asset `key` at `partition` and wait until its event shows."""
    page.goto(f"{url}/assets/{key}?view=events&partition={quote(partition, safe='')}")
    page.get_by_text(f"Partition {partition} materialized").first.wait_for()


def _open_markdown(page, label: str):
    """Click "[Show Markdown]" in the metadata row `label`; return the dialog it opens."""
    row = page.locator("tr", has=page.get_by_text(label, exact=True))
    row.get_by_text("[Show Markdown]").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_text(label, exact=True).wait_for()
    return dialog


def _close(dialog) -> None:
    dialog.get_by_role("button", name="Close").click()
    dialog.wait_for(state="hidden")


def _loaded_image_width(dialog) -> int:
    """The natural width of the dialog's first image once the browser has decoded it (0 for
    an image that failed to load)."""
    image = dialog.locator("img").first
    image.wait_for()
    return image.evaluate("img => img.decode().then(() => img.naturalWidth, () => 0)")


def test_the_web_ui_shows_the_attribution_report_and_scene_predictions(demo, tmp_path):
    instance, _, _ = demo
    partitions = {key: instance.get_latest_materialization_event(AssetKey(key))
                  .asset_materialization.partition
                  for key in ("attribution_report", "scene_predictions")}
    dagster_home = Path(instance.root_directory)
    with (chromium_page() as page,
          dagster_webserver(dagster_home, tmp_path / "webserver.log") as url):
        try:
            _events(page, url, "attribution_report", partitions["attribution_report"])
            page.get_by_text("maps_feature_visualisation", exact=True).wait_for()
            labels = set(page.locator("tr td:first-child").all_inner_texts())
            assert {f"maps_{method}" for method in METHODS} <= labels, sorted(labels)
            assert {f"bands_{method}" for method in METHODS} <= labels, sorted(labels)
            page.screenshot(path=tmp_path / "attribution_report.png", full_page=True)

            dialog = _open_markdown(page, "maps_grad_cam")
            assert _loaded_image_width(dialog) > 0
            page.screenshot(path=tmp_path / "maps_grad_cam.png")
            _close(dialog)

            dialog = _open_markdown(page, "summary")
            text = dialog.inner_text()
            assert "Attribution report: synthetic (classification)" in text
            header = "method\tseconds\tdeletion_auc\tinsertion_auc"
            assert header in text, text
            for method in METHODS:
                assert f"\n{method}\t" in text, method
            page.screenshot(path=tmp_path / "summary.png")
            _close(dialog)

            _events(page, url, "scene_predictions", partitions["scene_predictions"])
            dialog = _open_markdown(page, "quicklook")
            assert _loaded_image_width(dialog) > 0
            page.screenshot(path=tmp_path / "quicklook.png")
        finally:
            page.screenshot(path=tmp_path / "last.png")
