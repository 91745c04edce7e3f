"""Experiment configs: validation messages, recipes, hashing and YAML round trips."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from geovision.experiment.config import (
    ConfigError,
    ExperimentConfig,
    RecipeConfig,
    dump_config,
    load_config,
    load_recipe,
    parse_config,
)

BASE = {"project": "p", "name": "n", "task": "classification", "random_seed": 1,
        "dataset_name": "synthetic", "model": {"name": "small_cnn"}}


def test_minimal_config_fills_defaults():
    config = parse_config(BASE)
    assert isinstance(config, ExperimentConfig)
    assert config.trainer.max_epochs == 10 and config.data.source == "files"


def test_unknown_key_lists_valid_keys():
    with pytest.raises(ConfigError) as err:
        parse_config(BASE | {"trainer": {"epochs": 3}})
    message = str(err.value)
    assert "trainer.epochs: unknown key" in message
    assert "max_epochs" in message and "precision" in message
    with pytest.raises(ConfigError, match="valid keys here: project, name"):
        parse_config(BASE | {"learning_rate": 3})


def test_random_seed_is_required():
    with pytest.raises(ConfigError, match="random_seed"):
        parse_config({k: v for k, v in BASE.items() if k != "random_seed"})


def test_dataset_and_task_are_checked():
    with pytest.raises(ConfigError, match="unknown dataset_name 'nope'.*synthetic"):
        parse_config(BASE | {"dataset_name": "nope"})
    with pytest.raises(ConfigError, match="does not match dataset"):
        parse_config(BASE | {"dataset_name": "synthetic_segmentation"})


def test_model_is_checked_against_registry_and_task():
    with pytest.raises(ConfigError, match="Unknown model 'resnet9000'"):
        parse_config(BASE | {"model": {"name": "resnet9000"}})
    with pytest.raises(ConfigError, match="serves"):
        parse_config(BASE | {"model": {"name": "small_unet"}})
    with pytest.raises(ConfigError, match=r"no arguments \['widht'\]; valid"):
        parse_config(BASE | {"model": {"name": "small_cnn", "kwargs": {"widht": 3}}})


def test_hash_is_stable_and_sensitive():
    a = parse_config(BASE)
    b = parse_config(dict(reversed(list(BASE.items()))) | {"trainer": {"max_epochs": 10}})
    assert a.config_hash() == b.config_hash()
    assert a.config_hash() != parse_config(BASE | {"random_seed": 2}).config_hash()


def test_yaml_round_trip(tmp_path):
    config = parse_config(BASE | {"optimizer": {"lr": 0.01}, "metrics": ["accuracy", "f1"]})
    path = tmp_path / "c.yaml"
    path.write_text(dump_config(config))
    assert load_config(path) == config


def test_recipe_gets_its_dataset_from_outside(tmp_path):
    recipe = {k: v for k, v in BASE.items() if k != "dataset_name"}
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(recipe))
    assert isinstance(load_recipe(path), RecipeConfig)
    assert load_config(path, dataset_name="synthetic").dataset_name == "synthetic"
    path.write_text(yaml.safe_dump(BASE))
    with pytest.raises(ConfigError, match="must leave the dataset out"):
        load_config(path, dataset_name="synthetic")


def test_demo_recipe_is_valid():
    config = load_config("recipes/demo.yaml", dataset_name="synthetic")
    assert config.task == "classification" and config.random_seed == 0


SEG = BASE | {"task": "segmentation", "dataset_name": "synthetic_segmentation",
              "model": {"name": "small_unet"}}


def test_full_config_round_trips_and_hashes_stably(tmp_path):
    data = BASE | {
        "data": {"source": "hdf", "batch_size": 16, "num_workers": 2,
                 "split": {"val_split": 0.15, "test_split": 0.2, "random_seed": 7},
                 "transforms": ["hflip", "rot90"],
                 "mixing": {"mixup_alpha": 0.2, "cutmix_alpha": 1.0, "switch_prob": 0.3}},
        "optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.8, "weight_decay": 1e-4},
        "scheduler": {"name": "cosine", "warmup_epochs": 2, "warmup": "cosine"},
        "trainer": {"max_epochs": 12, "devices": 2, "precision": "bf16-mixed",
                    "accumulate_grad_batches": 2, "gradient_clip_val": 1.0},
        "swa": {"enabled": True, "start_epoch": 8, "lr": 0.01},
        "checkpoint": {"monitor": "val_f1", "mode": "max", "save_top_k": 2},
        "metrics": ["accuracy", "f1", "cohen_kappa"]}
    config = parse_config(data)
    path = tmp_path / "full.yaml"
    path.write_text(dump_config(config))
    again = load_config(path)
    assert again == config and again.config_hash() == config.config_hash()
    assert again.data.mixing.enabled and again.data.split.random_seed == 7


def test_workflow_picks_the_model_role_and_drops_label_metrics():
    gan = parse_config(BASE | {"workflow": "gan", "model": {"name": "small_gan"}})
    assert gan.model_role == "gan" and gan.metrics == ()
    assert parse_config(BASE).metrics == ("accuracy",)
    with pytest.raises(ConfigError, match="serves \\('gan',\\), not 'classification'"):
        parse_config(BASE | {"model": {"name": "small_gan"}})
    with pytest.raises(ConfigError, match="metrics: \\['accuracy'\\] need labels"):
        parse_config(BASE | {"workflow": "moco", "model": {"name": "small_moco"},
                             "metrics": ["accuracy"]})
    with pytest.raises(ConfigError, match="workflow: unknown 'diffusion'; registered: gan, "
                                          "moco, supervised, temporal, vae"):
        parse_config(BASE | {"workflow": "diffusion"})


def test_each_workflow_module_registers_itself():
    from pathlib import Path

    import geovision.experiment.workflows as workflows

    files = sorted(p.stem for p in Path(workflows.__file__).parent.glob("*.py")
                   if p.stem not in workflows.NOT_WORKFLOWS and not p.stem.startswith("_"))
    assert workflows.list_workflows() == files == ["gan", "moco", "supervised", "temporal",
                                                   "vae"]
    for name in files:
        spec = workflows.get_workflow(name)
        assert spec.module.__module__ == f"geovision.experiment.workflows.{name}"
        labelled = name in ("supervised", "temporal")
        assert spec.model_role("segmentation") == ("segmentation" if labelled else name)
    with pytest.raises(KeyError, match="Unknown workflow 'nope'; registered workflows: gan"):
        workflows.get_workflow("nope")


def test_gan_declares_its_own_config_checks():
    gan = BASE | {"workflow": "gan", "model": {"name": "small_gan"}}
    with pytest.raises(ConfigError, match="the gan workflow steps its two optimizers itself"):
        parse_config(gan | {"trainer": {"accumulate_grad_batches": 2}})
    with pytest.raises(ConfigError, match="swa: averaging needs a single optimizer"):
        parse_config(gan | {"swa": {"enabled": True}, "trainer": {"max_epochs": 3}})


def test_metric_names_and_monitor_are_checked():
    with pytest.raises(ConfigError, match="metrics: unknown \\['acc'\\]; valid: accuracy, f1"):
        parse_config(BASE | {"metrics": ["acc"]})
    with pytest.raises(ConfigError, match="checkpoint.monitor: 'val_f1' is not logged"):
        parse_config(BASE | {"checkpoint": {"monitor": "val_f1"}})
    assert parse_config(BASE | {"metrics": ["f1"], "checkpoint": {"monitor": "val_f1",
                                                                   "mode": "max"}})


def test_mixing_is_checked_against_task_and_workflow():
    with pytest.raises(ConfigError, match="mixup_alpha: MixUp would blend masks"):
        parse_config(SEG | {"data": {"mixing": {"mixup_alpha": 0.2}}})
    assert parse_config(SEG | {"data": {"mixing": {"cutmix_alpha": 1.0}}}).data.mixing.enabled
    with pytest.raises(ConfigError, match="mix labels, which the vae workflow"):
        parse_config(BASE | {"workflow": "vae", "model": {"name": "small_vae"},
                             "data": {"mixing": {"cutmix_alpha": 1.0}}})
    with pytest.raises(ConfigError, match="data.transforms.0: Input should be"):
        parse_config(BASE | {"data": {"transforms": ["shear"]}})


def test_trainer_and_swa_settings_are_checked():
    with pytest.raises(ConfigError, match="16-mixed needs a GPU; on CPU use bf16-mixed"):
        parse_config(BASE | {"trainer": {"accelerator": "cpu", "precision": "16-mixed"}})
    assert parse_config(BASE | {"trainer": {"accelerator": "gpu", "precision": "16-mixed"}})
    with pytest.raises(ConfigError, match="gan workflow steps its two optimizers"):
        parse_config(BASE | {"workflow": "gan", "model": {"name": "small_gan"},
                             "trainer": {"gradient_clip_val": 1.0}})
    with pytest.raises(ConfigError, match="swa.start_epoch: 10 is not before"):
        parse_config(BASE | {"swa": {"enabled": True, "start_epoch": 10}})
    with pytest.raises(ConfigError, match="swa: averaging needs a single optimizer"):
        parse_config(BASE | {"workflow": "gan", "model": {"name": "small_gan"},
                             "swa": {"enabled": True}})


def test_every_problem_is_reported_at_once():
    with pytest.raises(ConfigError) as err:
        parse_config(SEG | {"metrics": ["acc"], "data": {"mixing": {"mixup_alpha": 0.2}}})
    lines = str(err.value).splitlines()
    assert lines[0] == "Invalid ExperimentConfig in config:"
    assert any(line.startswith("  metrics: unknown") for line in lines)
    assert any(line.startswith("  data.mixing.mixup_alpha:") for line in lines)


def test_an_experiment_file_without_dataset_points_to_recipes(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump({k: v for k, v in BASE.items() if k != "dataset_name"}))
    with pytest.raises(ConfigError, match="it is a recipe; name the dataset"):
        load_config(path)


@pytest.mark.parametrize("task", ["classification", "segmentation", "multilabel"])
def test_metric_names_match_torchmetrics(task):
    import torchmetrics

    from geovision.experiment.config import METRICS, NOT_MULTILABEL
    from geovision.experiment.metrics import make_metrics

    names = tuple(m for m in METRICS if task != "multilabel" or m not in NOT_MULTILABEL)
    collection = make_metrics(names, 4, task)
    assert set(collection.keys()) == set(names)
    prefix = "Multilabel" if task == "multilabel" else "Multiclass"
    for name in names:
        expected = getattr(torchmetrics.classification, prefix + METRICS[name])
        assert isinstance(collection[name], expected)
    preds, target = torch.randn(6, 4), torch.tensor([0, 1, 2, 3, 1, 2])
    if task == "multilabel":
        target = (torch.rand(6, 4) > 0.5).int()
    if task == "segmentation":
        preds, target = torch.randn(2, 4, 3, 3), torch.randint(0, 4, (2, 3, 3))
    collection.update(preds, target)
    assert all(torch.isfinite(v) for v in collection.compute().values())


def test_multilabel_refuses_metrics_without_a_multilabel_form():
    config = {"project": "p", "name": "n", "task": "multilabel", "random_seed": 0,
              "dataset_name": "synthetic_multilabel", "model": {"name": "small_cnn"},
              "metrics": ["f1", "cohen_kappa"]}
    with pytest.raises(ConfigError, match=r"\['cohen_kappa'\] have no multi-label form"):
        parse_config(config)
    assert parse_config(config | {"metrics": ["f1", "auroc"]}).task == "multilabel"


@pytest.mark.parametrize("path", sorted(Path("recipes").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_recipe_is_valid(path):
    """Valid with at least one built-in (generated) dataset of the recipe's task."""
    from geovision.data.registry import get_dataset, list_datasets

    recipe = load_recipe(path)
    assert recipe.random_seed == 0
    built_in = [name for name in list_datasets()
                if name.startswith("synthetic") and get_dataset(name).TASK == recipe.task]
    valid = []
    for name in built_in:
        try:
            valid.append(load_config(path, dataset_name=name).dataset_name)
        except ConfigError:
            pass
    assert valid, f"{path} fits none of {built_in}"
