"""Training one experiment end to end on the built-in dataset."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
import yaml

from geovision.experiment.config import parse_config
from geovision.experiment.runtime.train import train
from geovision.experiment.workflows import load_module


def config(**overrides):
    data = {"project": "t", "name": "cnn", "task": "classification", "random_seed": 0,
            "dataset_name": "synthetic", "model": {"name": "small_cnn",
                                                   "kwargs": {"width": 8, "depth": 2}},
            "data": {"batch_size": 64}, "optimizer": {"lr": 0.005},
            "scheduler": {"name": "cosine", "warmup_epochs": 1},
            "trainer": {"max_epochs": 3, "accelerator": "cpu"}, "metrics": ["accuracy", "f1"]}
    return parse_config(data | overrides)


def test_train_writes_a_complete_run_directory(synthetic_root, geovision_home):
    assert not torch.are_deterministic_algorithms_enabled()
    result = train(config(), home=geovision_home, root=synthetic_root, progress=False)
    # The Trainer ran deterministically; the process is given back as it was.
    assert not torch.are_deterministic_algorithms_enabled()
    run = result.run_dir
    assert run.parent == geovision_home / "runs" / "t" / "cnn"
    hparams = yaml.safe_load((run / "hparams.yaml").read_text())
    assert hparams["config"]["random_seed"] == 0 and len(hparams["config_hash"]) == 16
    assert hparams["dataset"]["name"] == "synthetic" and hparams["dataset"]["df_hash"]
    assert "torch" in hparams["provenance"]["packages"]
    metrics = pd.read_csv(run / "metrics.csv")
    assert metrics["epoch"].tolist() == [0, 1, 2]
    for column in ("step", "train_loss", "val_loss", "val_accuracy", "train_lr_epoch"):
        assert metrics[column].notna().all(), column
    # linear warm-up for one epoch then cosine decay
    assert metrics["train_lr_epoch"].tolist()[0] == 0.0025
    assert metrics["train_lr_epoch"].tolist()[1] == 0.005
    assert metrics["train_loss"].iloc[-1] < metrics["train_loss"].iloc[0]
    pd.testing.assert_frame_equal(pd.read_parquet(run / "metrics.parquet"), metrics)
    assert [p.name for p in run.glob("t_train_*.log")] == [f"t_train_{run.name}.log"]
    assert result.best_checkpoint.is_file() and result.last_checkpoint.is_file()
    assert result.checkpoint == result.best_checkpoint
    assert result.test_metrics["test_accuracy"] > result.chance_accuracy + 0.2
    assert set(result.test_metrics) == {"test_loss", "test_accuracy", "test_f1"}
    assert yaml.safe_load((run / "status.yaml").read_text())["state"] == "finished"
    assert yaml.safe_load((run / "fit.yaml").read_text())["world_size"] == 1
    evaluation = yaml.safe_load((run / "evaluation" / "test_metrics.yaml").read_text())
    assert evaluation["num_samples"] == 80 and evaluation["metrics"] == result.test_metrics
    confusion = pd.read_csv(run / "evaluation" / "test_confusion_matrix.csv", index_col=0)
    assert list(confusion.index) == ["building", "road", "water", "vegetation"]
    assert confusion.to_numpy().sum() == 80
    assert confusion.to_numpy().trace() / 80 == pytest.approx(
        result.test_metrics["test_accuracy"])
    assert sorted(p.name for p in result.plots) == [
        "accuracy.png", "f1.png", "learning_rate.png", "loss.png", "test_confusion_matrix.png"]
    assert pd.read_parquet(run / "dataset_index.parquet")["split"].value_counts()["test"] == 80
    module = load_module(result.best_checkpoint)
    assert not module.training


def test_same_seed_gives_identical_metrics(synthetic_root, geovision_home):
    cfg = config(trainer={"max_epochs": 2, "accelerator": "cpu"},
                 data={"batch_size": 64, "transforms": ["hflip", "vflip", "rot90"],
                       "mixing": {"mixup_alpha": 0.4, "cutmix_alpha": 1.0}})
    first = train(cfg, home=geovision_home, root=synthetic_root, progress=False)
    second = train(cfg, home=geovision_home, root=synthetic_root, progress=False)
    assert first.run_dir != second.run_dir
    pd.testing.assert_frame_equal(pd.read_csv(first.metrics_csv), pd.read_csv(second.metrics_csv))
    assert first.test_metrics == second.test_metrics
    other = train(config(random_seed=1, trainer={"max_epochs": 2, "accelerator": "cpu"},
                         data=cfg.data.model_dump()),
                  home=geovision_home, root=synthetic_root, progress=False)
    assert not pd.read_csv(other.metrics_csv).equals(pd.read_csv(first.metrics_csv))


def test_config_split_settings_give_their_own_split(synthetic_root, geovision_home):
    cfg = config(trainer={"max_epochs": 1, "accelerator": "cpu"},
                 data={"batch_size": 64, "split": {"val_split": 0.2, "test_split": 0.3}})
    result = train(cfg, home=geovision_home, root=synthetic_root, progress=False)
    counts = pd.read_parquet(result.run_dir / "dataset_index.parquet")["split"].value_counts()
    assert counts.to_dict() == {"train": 201, "test": 119, "val": 80}  # stratified rounding
    assert result.evaluation.num_samples == 119


@pytest.mark.parametrize("source", ["hdf", "streaming"])
def test_shards_train_exactly_like_files(source, synthetic_root, geovision_home, tmp_path):
    """Shards written from the default index give the very same run as the image files."""
    from geovision.data.datasets.synthetic import SyntheticClassification
    from geovision.data.shards.hdf import write_hdf_splits
    from geovision.data.shards.streaming import write_streaming_splits

    shards = tmp_path / source
    if source == "hdf":
        write_hdf_splits(SyntheticClassification, synthetic_root, shards, progress=False)
    else:
        write_streaming_splits(SyntheticClassification, synthetic_root, shards, progress=False)
    epochs = {"max_epochs": 1, "accelerator": "cpu"}
    from_files = train(config(trainer=epochs), home=geovision_home, root=synthetic_root,
                       progress=False)
    from_shards = train(config(trainer=epochs, data={"batch_size": 64, "source": source}),
                        home=geovision_home, root=synthetic_root, shards_dir=shards,
                        progress=False)
    pd.testing.assert_frame_equal(pd.read_csv(from_files.metrics_csv),
                                  pd.read_csv(from_shards.metrics_csv))
    assert from_files.test_metrics == from_shards.test_metrics


def test_shards_from_another_index_are_refused(synthetic_root, geovision_home, tmp_path):
    from geovision.data.datasets.synthetic import SyntheticClassification
    from geovision.data.shards.hdf import write_hdf_splits
    from geovision.experiment.config import ConfigError

    other = SyntheticClassification.build_df(
        synthetic_root, SyntheticClassification.split_settings(random_seed=99))
    write_hdf_splits(SyntheticClassification, synthetic_root, tmp_path, df=other, progress=False)
    cfg = config(data={"batch_size": 64, "source": "hdf"})
    with pytest.raises(ConfigError, match="different dataset index"):
        train(cfg, home=geovision_home, root=synthetic_root, shards_dir=tmp_path,
              progress=False)
