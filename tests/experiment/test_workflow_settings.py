"""A workflow's own settings (`workflow_settings:`): validated against the chosen workflow's
model with messages naming it and its keys, read by its module in place of constants, and
left out of the config hash while at their defaults."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from geovision.experiment.config import ConfigError, dump_config, load_recipe, parse_config
from geovision.experiment.workflows import build_module, get_workflow
from geovision.experiment.workflows.augment import ViewSampler
from geovision.experiment.workflows.gan import GANSettings
from geovision.experiment.workflows.moco import MoCoModule, MoCoSettings

BASE = {"project": "p", "name": "n", "task": "classification", "random_seed": 0,
        "dataset_name": "synthetic"}
MOCO = BASE | {"workflow": "moco", "model": {"name": "small_moco", "kwargs": {
    "width": 8, "depth": 2, "dim": 16, "queue_size": 32}}}
RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "moco.yaml"
VIEWS = {"crop_scale": [0.8, 0.9], "jitter": 0.5, "noise": 0.0}


def _error(data: dict) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    return str(caught.value)


def test_moco_settings_default_to_todays_views_and_take_overrides():
    config = parse_config(MOCO)
    assert config.workflow_settings == MoCoSettings()
    assert (MoCoSettings().crop_scale, MoCoSettings().jitter, MoCoSettings().noise) == (
        (0.35, 1.0), 0.2, 0.1)
    set_ = parse_config(MOCO | {"workflow_settings": {"jitter": 0.4}}).settings_as(MoCoSettings)
    assert (set_.crop_scale, set_.jitter, set_.noise) == ((0.35, 1.0), 0.4, 0.1)
    assert get_workflow("moco").settings is MoCoSettings
    assert parse_config(BASE | {"model": {"name": "small_cnn"}}).workflow_settings is None


def test_unknown_setting_names_the_workflow_and_its_valid_keys():
    message = _error(MOCO | {"workflow_settings": {"jiter": 0.4}})
    assert "workflow_settings.jiter" in message and "moco workflow has no such setting" in message
    for key in ("crop_scale", "jitter", "noise"):
        assert key in message


def test_bad_values_name_the_setting_and_the_workflow():
    message = _error(MOCO | {"workflow_settings": {"crop_scale": [0.9, 0.1], "jitter": -1}})
    assert "workflow_settings.crop_scale" in message and "0 < low <= high <= 1" in message
    assert "workflow_settings.jitter" in message and "(moco workflow)" in message
    assert "a mapping of the moco workflow's settings" in _error(
        MOCO | {"workflow_settings": [0.5]})
    gan = BASE | {"workflow": "gan", "model": {"name": "small_gan"}}
    assert "workflow_settings.real_label" in _error(gan | {"workflow_settings": {
        "real_label": 0.3}})
    assert parse_config(gan | {"workflow_settings": {"real_label": 0.9}}).settings_as(
        GANSettings).real_label == 0.9


def test_settings_on_a_workflow_without_any_are_refused():
    for data in (BASE | {"model": {"name": "small_cnn"}, "workflow_settings": {"jitter": 0.1}},
                 BASE | {"workflow": "vae", "model": {"name": "small_vae"},
                         "workflow_settings": {}}):
        message = _error(data)
        workflow = data.get("workflow", "supervised")
        assert f"the {workflow} workflow has no settings; remove the section" in message
        assert "workflows with settings: gan, moco" in message
    assert "workflow: unknown 'mocoo'" in _error(MOCO | {"workflow": "mocoo",
                                                       "workflow_settings": {"jitter": 0.1}})


def test_moco_module_draws_views_with_the_configured_settings():
    default = build_module(parse_config(MOCO), in_channels=4, num_classes=2, image_size=16)
    assert isinstance(default, MoCoModule)
    for sampler in (default.views, default.eval_views):
        assert (sampler.scale, sampler.jitter, sampler.noise) == ((0.35, 1.0), 0.2, 0.1)
    config = parse_config(MOCO | {"workflow_settings": VIEWS})
    module = build_module(config, in_channels=4, num_classes=2, image_size=16)
    for sampler in (module.views, module.eval_views):
        assert (sampler.scale, sampler.jitter, sampler.noise) == ((0.8, 0.9), 0.5, 0.0)
    # The views drawn differ from today's: no noise, and the same draws as a sampler built
    # with these settings by hand.
    images = torch.randn(3, 4, 16, 16)
    by_hand = ViewSampler(config.random_seed + 1, scale=(0.8, 0.9), jitter=0.5, noise=0.0)
    views = module.views(images)
    assert torch.equal(views, by_hand(images))
    assert not torch.allclose(views, ViewSampler(config.random_seed + 1, scale=(0.35, 1.0),
                                                 jitter=0.2, noise=0.1)(images))
    # The checkpoint's hyperparameters carry the settings: a rebuilt module keeps them.
    rebuilt = MoCoModule(module.hparams["config"], 4, 2, 16)
    assert rebuilt.config.workflow_settings == MoCoSettings(**VIEWS)
    assert rebuilt.views.scale == (0.8, 0.9)


def test_defaults_keep_the_hash_and_other_settings_change_it():
    for data in (MOCO, BASE | {"model": {"name": "small_cnn"}}):
        config = parse_config(data)
        # Without the section, the hash is the one of runs recorded before it existed.
        before = {k: v for k, v in config.model_dump(mode="json").items()
                  if k not in ("workflow_settings", "loss")}
        canonical = json.dumps(before, sort_keys=True).encode()
        assert config.config_hash() == hashlib.sha256(canonical).hexdigest()[:16]
    # Pinned: the hash a moco run of this config was recorded with before settings existed.
    plain = BASE | {"workflow": "moco", "model": {"name": "small_moco"}}
    assert parse_config(plain).config_hash() == "83a0f6b06a626796"
    spelled_out = parse_config(MOCO | {"workflow_settings": {
        "crop_scale": [0.35, 1.0], "jitter": 0.2, "noise": 0.1}})
    assert spelled_out.config_hash() == parse_config(MOCO).config_hash()
    changed = parse_config(MOCO | {"workflow_settings": {"noise": 0.05}})
    assert changed.config_hash() != parse_config(MOCO).config_hash()
    again = parse_config(yaml.safe_load(dump_config(changed)))
    assert again == changed and again.config_hash() == changed.config_hash()
    # The moco recipe spells its defaults out and keeps the hash it had.
    recipe = load_recipe(RECIPE).with_dataset("synthetic")
    assert recipe.workflow_settings == MoCoSettings()
    assert recipe.config_hash() == "bf464f4774b34f83"


def test_cli_lists_each_workflows_settings():
    done = subprocess.run([sys.executable, "-m", "geovision.cli", "workflows"],
                          capture_output=True, text=True, check=True)
    lines = done.stdout.splitlines()
    assert any(line.startswith("moco ") for line in lines)
    assert "    workflow_settings.crop_scale = (0.35, 1.0): range of the share" in done.stdout
    assert "workflow_settings.real_label = 1.0" in done.stdout
    supervised = next(i for i, line in enumerate(lines) if line.startswith("supervised "))
    assert not lines[supervised + 1].startswith("    workflow_settings.")
