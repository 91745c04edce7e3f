"""Every workflow trains on the built-in data, its loss goes down, and it reloads from its
checkpoint to the same evaluation."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from geovision.experiment.config import parse_config
from geovision.experiment.runtime.evaluate import evaluate_run
from geovision.experiment.runtime.train import train
from geovision.experiment.workflows import load_module
from geovision.experiment.workflows.gan import GANModule
from geovision.experiment.workflows.moco import MoCoModule
from geovision.experiment.workflows.supervised import SupervisedModule
from geovision.experiment.workflows.vae import VAEModule

BASE = {"project": "wf", "task": "classification", "random_seed": 0,
        "dataset_name": "synthetic", "data": {"batch_size": 32}}

WORKFLOWS = {
    "gan": ({"workflow": "gan", "model": {"name": "small_gan",
                                          "kwargs": {"latent_dim": 32, "width": 16}},
             "optimizer": {"name": "adam", "lr": 0.0005, "betas": [0.5, 0.999]}},
            4, GANModule, ["train_d_loss", "train_g_loss"]),
    "vae": ({"workflow": "vae", "model": {"name": "small_vae",
                                          "kwargs": {"latent_dim": 16, "width": 8}},
             "optimizer": {"lr": 0.003}},
            4, VAEModule, ["train_reconstruction", "train_kl"]),
    "moco": ({"workflow": "moco", "model": {"name": "small_moco", "kwargs": {
                 "width": 8, "depth": 2, "dim": 32, "queue_size": 128}},
              "optimizer": {"lr": 0.003}},
             6, MoCoModule, []),
}


@pytest.mark.parametrize("workflow", list(WORKFLOWS))
def test_self_supervised_workflow_learns_and_reloads(workflow, synthetic_root,
                                                     geovision_home):
    overrides, epochs, module_cls, extra_columns = WORKFLOWS[workflow]
    config = parse_config(BASE | overrides | {
        "name": workflow, "trainer": {"max_epochs": epochs, "accelerator": "cpu"}})
    assert config.metrics == ()  # labels are not used
    result = train(config, home=geovision_home, root=synthetic_root, progress=False)
    metrics = pd.read_csv(result.metrics_csv)
    assert metrics["epoch"].tolist() == list(range(epochs))
    for column in ("train_loss", "val_loss", *extra_columns):
        assert metrics[column].notna().all(), column
    # The loss every workflow is judged and checkpointed by goes down.
    assert metrics["val_loss"].iloc[-1] < 0.97 * metrics["val_loss"].iloc[0]
    if workflow != "moco":  # MoCo's training loss rises while the queue fills with real keys
        assert metrics["train_loss"].iloc[-1] < metrics["train_loss"].iloc[0]
    assert set(result.test_metrics) == {"test_loss"} and result.evaluation.confusion is None
    assert result.chance_accuracy is None
    module = load_module(result.checkpoint)
    assert isinstance(module, module_cls) and not module.training
    again = evaluate_run(result.run_dir, checkpoint=result.checkpoint, progress=False)
    assert again.metrics["test_loss"] == pytest.approx(result.test_metrics["test_loss"])


def test_gan_samples_images_of_the_data_shape(synthetic_root, geovision_home):
    overrides = WORKFLOWS["gan"][0]
    config = parse_config(BASE | overrides | {"name": "gan_shape",
                                              "trainer": {"max_epochs": 1,
                                                          "accelerator": "cpu"}})
    result = train(config, home=geovision_home, root=synthetic_root, progress=False)
    module = load_module(result.checkpoint)
    with torch.no_grad():
        samples = module(torch.randn(3, 32))
    assert samples.shape == (3, 4, 64, 64) and torch.isfinite(samples).all()


def test_segmentation_with_cutmix_and_flips_learns(synthetic_root, geovision_home):
    from geovision.data.datasets.synthetic import generate

    seg_root = synthetic_root.parent.parent / "synthetic_segmentation"
    if not seg_root.exists():
        seg_root = generate(seg_root, progress=False)
    config = parse_config({
        "project": "wf", "name": "unet", "task": "segmentation", "random_seed": 0,
        "dataset_name": "synthetic_segmentation",
        "model": {"name": "small_unet", "kwargs": {"width": 8}},
        "data": {"batch_size": 32, "transforms": ["hflip", "vflip", "rot90"],
                 "mixing": {"cutmix_alpha": 1.0, "prob": 0.5}},
        "optimizer": {"lr": 0.01},
        "trainer": {"max_epochs": 3, "accelerator": "cpu", "accumulate_grad_batches": 2,
                    "gradient_clip_val": 1.0},
        "metrics": ["accuracy", "jaccard"]})
    result = train(config, home=geovision_home, root=seg_root, progress=False)
    metrics = pd.read_csv(result.metrics_csv)
    # 9 batches per epoch, gradients accumulated over 2: 5 optimizer steps per epoch.
    assert metrics["step"].tolist() == [5, 10, 15]
    assert metrics["train_loss"].iloc[-1] < metrics["train_loss"].iloc[0]
    assert metrics["val_loss"].iloc[-1] < metrics["val_loss"].iloc[0]
    confusion = result.evaluation.confusion
    assert confusion.shape == (5, 5)
    # Pixels counted: every test pixel once (64 x 64 per image).
    assert confusion.to_numpy().sum() == result.evaluation.num_samples * 64 * 64
    assert result.test_metrics["test_accuracy"] > 0.5
    assert isinstance(load_module(result.checkpoint), SupervisedModule)


def test_multilabel_with_mixing_learns_and_reports_per_label_outcomes(synthetic_root,
                                                                     geovision_home):
    from typer.testing import CliRunner

    from geovision.cli import app

    config = parse_config({
        "project": "wf", "name": "tags", "task": "multilabel", "random_seed": 0,
        "dataset_name": "synthetic_multilabel",
        "model": {"name": "small_cnn", "kwargs": {"width": 8, "depth": 2}},
        "data": {"batch_size": 32, "transforms": ["hflip"],
                 "mixing": {"mixup_alpha": 0.4, "cutmix_alpha": 1.0, "prob": 0.5}},
        "optimizer": {"lr": 0.01},
        "trainer": {"max_epochs": 4, "accelerator": "cpu"},
        "metrics": ["accuracy", "f1", "auroc"], "checkpoint": {"monitor": "val_f1",
                                                               "mode": "max"}})
    result = train(config, home=geovision_home, root=synthetic_root, progress=False)
    outcomes, outcomes_names = result.evaluation.confusion, ["building", "road", "water",
                                                             "vegetation"]
    metrics = pd.read_csv(result.metrics_csv)
    assert metrics["train_loss"].iloc[-1] < metrics["train_loss"].iloc[0]
    assert metrics["val_loss"].iloc[-1] < metrics["val_loss"].iloc[0]
    assert {"train_f1", "val_f1", "val_auroc"} <= set(metrics.columns)
    assert result.chance_accuracy is None
    # The bar: answer each label with its more frequent test value, whatever the image.
    test = pd.read_parquet(result.run_dir / "dataset_index.parquet").query("split == 'test'")
    present = pd.DataFrame([[name in s.split("|") for name in outcomes_names]
                            for s in test["label_str"]]).mean()
    constant_accuracy = float(present.where(present > 0.5, 1 - present).mean())
    assert result.test_metrics["test_accuracy"] > constant_accuracy + 0.05
    assert result.test_metrics["test_auroc"] > 0.7  # 0.5 for guessing
    assert list(outcomes.columns) == ["true_negative", "false_positive", "false_negative",
                                      "true_positive"]
    assert list(outcomes.index) == outcomes_names
    assert (outcomes.sum(axis=1) == result.evaluation.num_samples).all()
    printed = CliRunner().invoke(app, ["test", str(result.run_dir), "--home",
                                       str(geovision_home)])
    assert printed.exit_code == 0, printed.output
    assert "per-label outcomes at threshold 0.5 (rows: label):" in printed.output
    module = load_module(result.checkpoint)
    prediction = module.predict_step((torch.zeros(2, 4, 64, 64),), 0)
    assert prediction.shape == (2, 4) and set(prediction.unique().tolist()) <= {0, 1}


def test_swa_trains_and_evaluates_the_averaged_weights(synthetic_root, geovision_home):
    config = parse_config(BASE | {
        "name": "swa", "model": {"name": "small_cnn", "kwargs": {"width": 8, "depth": 2}},
        "data": {"batch_size": 64}, "optimizer": {"lr": 0.005},
        "trainer": {"max_epochs": 3, "accelerator": "cpu", "precision": "bf16-mixed"},
        "swa": {"enabled": True, "start_epoch": 1, "lr": 0.002}})
    result = train(config, home=geovision_home, root=synthetic_root, progress=False)
    metrics = pd.read_csv(result.metrics_csv)
    # The batch-norm refresh pass SWA adds after the last epoch writes no row.
    assert metrics["epoch"].tolist() == [0, 1, 2]
    assert result.checkpoint.name == "swa.ckpt"
    averaged = torch.load(result.checkpoint, weights_only=True)["state_dict"]
    last = torch.load(result.last_checkpoint, weights_only=True)["state_dict"]
    weight = "model.head.3.weight"
    assert not torch.equal(averaged[weight], last[weight])
    assert result.test_metrics["test_accuracy"] > result.chance_accuracy
