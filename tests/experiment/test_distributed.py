"""Two-process DDP training on CPU (gloo) under torchrun: from the library, and from the
trained_model asset through Dagster Pipes with one materialization reported by rank 0."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import yaml

from geovision.experiment.config import parse_config
from geovision.experiment.runfolders.folder import read_yaml
from geovision.experiment.runtime.distributed import torchrun_command
from geovision.experiment.runtime.train import train

RECIPE = {"project": "ddp", "name": "cnn", "task": "classification", "random_seed": 0,
          "model": {"name": "small_cnn", "kwargs": {"width": 8, "depth": 2}},
          "data": {"batch_size": 32}, "optimizer": {"lr": 0.005},
          "trainer": {"max_epochs": 2, "accelerator": "cpu", "devices": 2},
          "metrics": ["accuracy"]}
TRAIN_SAMPLES = 281


def test_torchrun_command_runs_this_interpreter(tmp_path):
    import sys

    command = torchrun_command(tmp_path, 2, resume=True, progress=False)
    assert command[:5] == [sys.executable, "-m", "torch.distributed.run", "--standalone",
                           "--nproc_per_node=2"]
    assert command[5:] == ["-m", "geovision.experiment.runtime.distributed", "--run-dir",
                           str(tmp_path), "--resume", "--no-progress"]


def test_two_process_ddp_from_the_library(synthetic_root, geovision_home):
    config = parse_config(RECIPE | {"dataset_name": "synthetic"})
    result = train(config, home=geovision_home, root=synthetic_root, progress=False)
    fit = read_yaml(result.run_dir / "fit.yaml")
    assert fit["world_size"] == 2
    metrics = pd.read_csv(result.metrics_csv)
    assert metrics["epoch"].tolist() == [0, 1]  # rank 0 alone writes rows
    # Each process reads half the train split: steps per epoch halve.
    steps = math.ceil(math.ceil(TRAIN_SAMPLES / 2) / 32)
    assert metrics["step"].tolist() == [steps, 2 * steps]
    assert metrics["train_loss"].iloc[-1] < metrics["train_loss"].iloc[0]
    log = next(result.run_dir.glob("ddp_train_*.log")).read_text()
    assert "Starting with 2 processes" in log or "MEMBER: 2/2" in log
    # Evaluation runs afterwards in one process, over the whole test split.
    assert result.evaluation.num_samples == 80
    assert result.evaluation.confusion.to_numpy().sum() == 80


def test_trained_model_asset_launches_ddp_through_pipes(tmp_path, synthetic_root,
                                                         monkeypatch):
    from dagster import AssetKey, DagsterInstance, MultiPartitionKey, materialize

    from geovision import pipeline
    from geovision.data.acquire import build_index
    from geovision_assets.assets.training import trained_model
    from geovision_assets.definitions import default_resources

    home, recipes = tmp_path / "home", tmp_path / "recipes"
    (home / "datasets").mkdir(parents=True)
    (home / "datasets" / "synthetic").symlink_to(synthetic_root)
    recipes.mkdir()
    (recipes / "ddp.yaml").write_text(yaml.safe_dump(RECIPE))
    monkeypatch.setenv("GEOVISION_HOME", str(home))
    monkeypatch.setenv("GEOVISION_RECIPES", str(recipes))
    build_index("synthetic", home)
    pipeline.compute_statistics("synthetic", home, progress=False)

    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions("recipe", ["ddp"])
        key = MultiPartitionKey({"dataset": "synthetic", "recipe": "ddp"})
        result = materialize([trained_model], partition_key=str(key), instance=instance,
                             resources=default_resources())
        assert result.success
        events = result.get_asset_materialization_events()
        assert len(events) == 1  # one materialization, not one per rank
        materialization = events[0].materialization
        assert materialization.asset_key == AssetKey("trained_model")
        meta = materialization.metadata
        assert meta["world_size"].value == 2 and meta["reported_by_rank"].value == 0
        assert meta["devices"].value == 2 and meta["epochs"].value == 2
        record = pipeline.load_model_record("synthetic", "ddp", home)
        assert materialization.tags["dagster/data_version"] == record.checkpoint_sha256
        assert meta["test_accuracy"].value == pytest.approx(
            record.test_metrics["test_accuracy"])
        logs = [e.message for e in instance.all_logs(result.run_id)
                if e.message and e.message.startswith("epoch ")]
        assert len(logs) == 2  # rank 0 streamed each epoch to Dagster's log
