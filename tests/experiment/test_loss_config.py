"""The config's loss section: terms, presets and overrides, the checks and their messages, and
a segmentation run trained with cross-entropy + Potts / normalized cut."""

from __future__ import annotations

import hashlib
import json
import math

import pandas as pd
import pytest
import torch

from geovision.experiment.config import ConfigError, LossConfig, parse_config
from geovision.experiment.regularizers import PairwiseTerms, pairwise_specs
from geovision.models.losses import PRESETS, potts_loss

SEG = {"project": "p", "name": "n", "task": "segmentation", "random_seed": 1,
       "dataset_name": "synthetic_segmentation", "model": {"name": "small_unet"}}
CLS = SEG | {"task": "classification", "dataset_name": "synthetic",
             "model": {"name": "small_cnn"}}


def test_default_is_cross_entropy_alone_and_keeps_the_hash():
    config = parse_config(SEG)
    assert config.loss == LossConfig() and config.loss.ce.weight == 1.0
    assert config.loss.pairwise() == {}
    spelled_out = parse_config(SEG | {"loss": {"ce": 1.0}})
    assert spelled_out == config and spelled_out.config_hash() == config.config_hash()
    # Without a loss section the hash is the one of runs recorded before the section existed
    # (nor workflow_settings, added later still: a supervised run has none).
    before = {k: v for k, v in config.model_dump(mode="json").items()
              if k not in ("loss", "workflow_settings")}
    canonical = json.dumps(before, sort_keys=True).encode()
    assert config.config_hash() == hashlib.sha256(canonical).hexdigest()[:16]
    assert config.config_hash() == "e4bd9066e0c15954"  # as recorded before either section
    assert parse_config(SEG | {"loss": {"ce": 0.5}}).config_hash() != config.config_hash()


def test_terms_take_a_weight_or_settings_and_fill_in_the_preset():
    config = parse_config(SEG | {"loss": {
        "ce": 1.0, "potts": {"weight": 0.5, "preset": "rloss", "radius": 3},
        "normalized_cut": 0.2}})
    potts, ncut = pairwise_specs(config.loss)
    rloss, zorzi = PRESETS["rloss"], PRESETS["zorzi"]
    assert potts.name == "potts" and potts.weight == 0.5 and potts.kernel.radius == 3
    assert potts.kernel.sigma_rgb == rloss.kernel.sigma_rgb and potts.kernel.scale == 0.5
    assert potts.normalize == "images" and potts.ramp is None
    assert ncut.name == "normalized_cut" and ncut.weight == 0.2 and ncut.kernel == zorzi.kernel
    assert ncut.ramp == zorzi.ramp
    assert ncut.weight_at(0.0) == 0 and ncut.weight_at(None) == 0.2
    assert ncut.weight_at(0.5) == pytest.approx(0.2 * (0.5 - 3 / 7) / (3 / 7))
    no_ramp = parse_config(SEG | {"loss": {"potts": {"ramp": {"start": 0, "end": 0}}}})
    (spec,) = pairwise_specs(no_ramp.loss)
    assert spec.weight == zorzi.weight and spec.weight_at(0.0) == spec.weight


@pytest.mark.parametrize(("loss", "message"), [
    ({"dice": 1.0}, "loss.dice: unknown key; valid keys here: ce, potts, normalized_cut"),
    ({"potts": {"sigma": 3}}, "loss.potts.sigma: unknown key; valid keys here: weight, preset, "
                              "sigma_rgb, sigma_xy, radius, scale, normalize, ramp, roi"),
    ({"potts": {"preset": "densecrf"}}, "unknown preset 'densecrf'; presets: rloss, zorzi"),
    ({"potts": {"roi": "scribbles"}}, "loss.potts.roi: Input should be 'image' or 'labelled'"),
    ({"potts": {"ramp": {"start": 0.6, "end": 0.3}}}, "end 0.3 is before start 0.6"),
    ({"potts": {"scale": 2}}, "loss.potts.scale: Input should be less than or equal to 1"),
    ({"ce": 0}, "loss: every term has weight 0; give one a positive weight"),
    ({"ce": -1}, "loss.ce.weight: Input should be greater than or equal to 0"),
])
def test_bad_loss_sections_name_the_key_and_the_valid_ones(loss, message):
    with pytest.raises(ConfigError, match="Invalid ExperimentConfig") as err:
        parse_config(SEG | {"loss": loss})
    assert message in str(err.value)


def test_regularisers_serve_segmentation_and_supervised_runs_only():
    with pytest.raises(ConfigError, match="loss: potts regularise segmentation masks, not "
                                          "classification; for classification the only term"):
        parse_config(CLS | {"loss": {"potts": 1.0}})
    assert parse_config(CLS | {"loss": {"ce": 2.0}}).loss.ce.weight == 2.0
    with pytest.raises(ConfigError, match="the vae workflow has losses of its own"):
        parse_config(CLS | {"workflow": "vae", "model": {"name": "small_vae"},
                            "loss": {"ce": 2.0}})
    temporal = SEG | {"workflow": "temporal", "dataset_name": "synthetic_temporal",
                      "model": {"name": "small_utae"}}
    assert parse_config(temporal).loss.pairwise() == {}
    with pytest.raises(ConfigError, match="temporal trains with cross-entropy only"):
        parse_config(temporal | {"loss": {"potts": 1.0}})


def test_the_terms_can_be_monitored_when_set():
    config = parse_config(SEG | {"loss": {"potts": 1.0}, "checkpoint": {"monitor": "val_ce"}})
    assert config.checkpoint.monitor == "val_ce"
    with pytest.raises(ConfigError, match="val_potts.*is not logged"):
        parse_config(SEG | {"checkpoint": {"monitor": "val_potts"}})


def test_pairwise_terms_use_the_bands_in_unit_scale():
    """A standardised image times the dataset's std gives the affinity of the [0, 1] image."""
    config = parse_config(SEG | {"loss": {"potts": {"weight": 1.0, "sigma_rgb": 0.2}}})
    std = (0.5, 0.25)
    terms = PairwiseTerms(config.loss, std)
    gen = torch.Generator().manual_seed(0)
    unit = torch.rand((2, 2, 8, 8), generator=gen)
    standardised = (unit - 0.3) / torch.tensor(std).view(1, 2, 1, 1)
    logits = torch.randn((2, 3, 8, 8), generator=gen)
    labelled = torch.ones((2, 8, 8), dtype=torch.bool)
    value, weight = terms(logits, standardised, labelled, progress=1.0)["potts"]
    from geovision.models.losses import gaussian_affinity

    kernel = pairwise_specs(config.loss)[0].kernel
    expected = potts_loss(logits.softmax(1), gaussian_affinity(unit, 0.2, kernel.sigma_xy,
                                                               kernel.radius))
    assert value.item() == pytest.approx(expected.item(), rel=1e-5) and weight == 1.0
    assert terms(logits, standardised, labelled, progress=0.0)["potts"][1] == 0.0  # ramp


@pytest.fixture(scope="module")
def seg_root(tmp_path_factory):
    from geovision.data.datasets.synthetic import generate

    return generate(tmp_path_factory.mktemp("seg") / "synthetic_segmentation", num_scenes=48,
                    progress=False)


def _train(seg_root, home, loss=None, epochs=2):
    from geovision.experiment.runtime.train import train

    config = parse_config({
        "project": "losses", "name": "unet", "task": "segmentation", "random_seed": 0,
        "dataset_name": "synthetic_segmentation",
        "model": {"name": "small_unet", "kwargs": {"width": 8}},
        "data": {"batch_size": 16}, "optimizer": {"lr": 0.01},
        "trainer": {"max_epochs": epochs, "accelerator": "cpu"},
        "metrics": ["accuracy"]} | ({"loss": loss} if loss is not None else {}))
    return train(config, home=home, root=seg_root, progress=False)


def test_segmentation_trains_with_potts_and_normalized_cut(seg_root, tmp_path):
    torch.manual_seed(0)
    result = _train(seg_root, tmp_path, {"ce": 1.0, "potts": {"weight": 0.5},
                                         "normalized_cut": {"weight": 0.1,
                                                            "ramp": {"start": 0, "end": 0}}})
    metrics = pd.read_csv(result.metrics_csv)
    for stage in ("train", "val"):
        assert {f"{stage}_ce", f"{stage}_potts", f"{stage}_normalized_cut"} <= set(metrics)
    assert (metrics["val_potts"] > 0).all() and (metrics["val_normalized_cut"] < 5).all()
    # Validation weighs every term in full; training ramps Potts (Zorzi: from 3/7 of it).
    full = metrics["val_ce"] + 0.5 * metrics["val_potts"] + 0.1 * metrics["val_normalized_cut"]
    assert metrics["val_loss"].to_numpy() == pytest.approx(full.to_numpy(), rel=1e-5)
    first = metrics.iloc[0]
    assert first["train_loss"] == pytest.approx(first["train_ce"]
                                                + 0.1 * first["train_normalized_cut"],
                                                rel=1e-5)
    assert metrics["train_ce"].iloc[-1] < metrics["train_ce"].iloc[0]
    test = result.test_metrics
    assert math.isfinite(test["test_loss"]) and test["test_loss"] > test["test_ce"] > 0


def test_a_spelled_out_default_loss_trains_to_the_same_figures(seg_root, tmp_path):
    plain = pd.read_csv(_train(seg_root, tmp_path / "a", epochs=1).metrics_csv)
    spelled = pd.read_csv(_train(seg_root, tmp_path / "b", {"ce": 1.0}, epochs=1).metrics_csv)
    assert "train_ce" not in plain and list(plain.columns) == list(spelled.columns)
    pd.testing.assert_frame_equal(plain, spelled)
