"""Experiment configs: validation messages, recipes, hashing and YAML round trips."""

from __future__ import annotations

import pytest
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
