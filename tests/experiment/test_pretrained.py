"""A config's model.weights: training starts from a port's or a saved file's weights, adapted to
the data's bands and classes; the file and its sha256 are recorded; checkpoints and resumes
keep their trained weights; weights that are not there say which and how to make them."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys

import pytest
import torch
import yaml
from safetensors.torch import save_file

from geovision.data.datasets.synthetic import BANDS, generate
from geovision.errors import ConfigError, GeovisionError, MissingWeightsError
from geovision.experiment.config import parse_config
from geovision.experiment.runtime.train import train
from geovision.experiment.workflows import load_module
from geovision.hashing import sha256_file
from geovision.models import create_model
from geovision.models.port import RGB, port_folder, port_weights
from geovision.models.weights import WeightsSpec, adapt_input_conv, read_state_dict
from tests.checkpoints import torchvision_checkpoint

torch.set_num_threads(1)
PORT = "resnet18.torchvision"


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    """A small synthetic dataset: 4 bands (red, green, blue, nir) and 4 classes."""
    return generate(tmp_path_factory.mktemp("scenes") / "synthetic", num_scenes=48, size=32,
                    progress=False)


def config(model: dict, **overrides) -> dict:
    """One epoch at a learning rate too small to move a weight by 1e-6: what the checkpoint
    holds is what training started from."""
    return {"project": "t", "name": "pretrained", "task": "classification", "random_seed": 0,
            "dataset_name": "synthetic", "model": model, "data": {"batch_size": 16},
            "optimizer": {"name": "sgd", "lr": 1e-9, "momentum": 0.0},
            "trainer": {"max_epochs": 1, "accelerator": "cpu"}} | overrides


def recorded(run_dir) -> dict:
    return yaml.safe_load((run_dir / "hparams.yaml").read_text())["provenance"]["weights"]


def test_training_starts_from_a_port_adapted_to_four_bands(scenes, tmp_path, torch_home):
    home = tmp_path / "home"
    torchvision_checkpoint(torch_home, "ResNet18_Weights.IMAGENET1K_V1")  # as downloaded
    spec = port_weights(PORT, home)
    assert spec.source_weights.startswith("torchvision ResNet18_Weights.IMAGENET1K_V1 ")
    cfg = parse_config(config({"name": "resnet18", "weights": PORT}))
    result = train(cfg, home=home, root=scenes, progress=False)

    folder = port_folder(PORT, home)
    record = recorded(result.run_dir)
    assert record["port"] == PORT and record["file"] == str(folder / "weights.safetensors")
    assert record["sha256"] == sha256_file(folder / "weights.safetensors") == spec.sha256
    assert record["manifest"] == str(folder / "manifest.json")

    ported = read_state_dict(spec.path)
    expected = adapt_input_conv(ported["stem.conv.weight"], 4, RGB, BANDS)
    trained = load_module(result.last_checkpoint).model
    first = trained.stem.conv.weight.detach()
    assert first.shape == (64, 4, 7, 7)
    torch.testing.assert_close(first, expected, rtol=0, atol=1e-6)
    torch.testing.assert_close(first[:, :3], ported["stem.conv.weight"], rtol=0, atol=1e-6)
    torch.testing.assert_close(trained.stages[3].blocks[1].conv2.conv.weight.detach(),
                               ported["stages.3.blocks.1.conv2.conv.weight"], rtol=0, atol=1e-6)
    # The 1000-class classifier was left out: the 4-class one is the model's own init.
    assert trained.head.fc.weight.shape == (4, 512)
    fresh = create_model("resnet18", in_channels=4, num_classes=4)
    assert not torch.allclose(fresh.stem.conv.weight, first, atol=1e-3)

    # Loading the checkpoint and resuming the run never read the starting weights again:
    # with them gone both still work and keep the trained weights.
    shutil.rmtree(folder)
    checkpoint = torch.load(result.last_checkpoint, map_location="cpu", weights_only=True)
    module = load_module(result.last_checkpoint)
    for key, value in module.state_dict().items():
        assert torch.equal(value, checkpoint["state_dict"][key]), key
    resumed = train(cfg, home=home, root=scenes, progress=False, resume=True)
    assert resumed.run_dir == result.run_dir
    assert torch.equal(load_module(resumed.last_checkpoint).model.stem.conv.weight, first)


def save_small_cnn(folder, *, num_classes: int, in_channels: int = 3,
                   manifest: bool = True) -> dict[str, torch.Tensor]:
    """Seeded random small_cnn weights written as a user's own weights file (+ manifest)."""
    torch.manual_seed(7)
    model = create_model("small_cnn", in_channels=in_channels, num_classes=num_classes,
                         width=8, depth=2)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    folder.mkdir(parents=True)
    save_file(state, str(folder / "weights.safetensors"))
    if manifest:
        spec = WeightsSpec(name="mine", model="small_cnn", file="weights.safetensors",
                           sha256=sha256_file(folder / "weights.safetensors"), bands=RGB,
                           num_classes=num_classes, first_conv="features.0.conv",
                           classifier="head.3")
        (folder / "manifest.json").write_text(spec.to_json())
    return state


SMALL = {"name": "small_cnn", "kwargs": {"width": 8, "depth": 2}}


def test_a_saved_manifest_of_another_class_count(scenes, tmp_path):
    state = save_small_cnn(tmp_path / "mine", num_classes=10)
    cfg = parse_config(config(SMALL | {"weights": str(tmp_path / "mine" / "manifest.json")}))
    result = train(cfg, home=tmp_path / "home", root=scenes, progress=False)
    record = recorded(result.run_dir)
    file = tmp_path / "mine" / "weights.safetensors"
    assert record["sha256"] == hashlib.sha256(file.read_bytes()).hexdigest()
    assert record["file"] == str(file) and record["port"] is None
    model = load_module(result.last_checkpoint).model
    expected = adapt_input_conv(state["features.0.conv.weight"], 4, RGB, BANDS)
    torch.testing.assert_close(model.features[0].conv.weight.detach(), expected, rtol=0,
                               atol=1e-6)
    # nir has no filter of that name in the RGB weights: it starts at zero.
    assert model.features[0].conv.weight.detach()[:, 3].abs().max() < 1e-6
    assert model.head[3].weight.shape == (4, 16)  # the 10-class head was left out


def test_a_bare_weights_file_of_the_same_shapes(scenes, tmp_path):
    state = save_small_cnn(tmp_path / "bare", num_classes=4, in_channels=4, manifest=False)
    file = tmp_path / "bare" / "weights.safetensors"
    cfg = parse_config(config(SMALL | {"weights": str(file)}))
    result = train(cfg, home=tmp_path / "home", root=scenes, progress=False)
    assert recorded(result.run_dir)["sha256"] == sha256_file(file)
    assert recorded(result.run_dir)["manifest"] is None
    model = load_module(result.last_checkpoint).model
    torch.testing.assert_close(model.features[0].conv.weight.detach(),
                               state["features.0.conv.weight"], rtol=0, atol=1e-6)


def test_an_unknown_port_or_a_port_of_another_model_is_refused():
    with pytest.raises(ConfigError) as unknown:
        parse_config(config({"name": "resnet18", "weights": "resnet19.torchvision"}))
    assert "model.weights" in str(unknown.value) and "'resnet19.torchvision'" in str(unknown.value)
    assert PORT in str(unknown.value)  # the known ports are listed
    with pytest.raises(ConfigError) as other:
        parse_config(config({"name": "resnet18", "weights": "resnet50.timm"}))
    assert "resnet50.timm holds resnet50 weights" in str(other.value)
    assert f"or use {PORT}" in str(other.value)


def test_a_port_never_made_says_which_and_how(scenes, tmp_path):
    home = tmp_path / "home"
    cfg = parse_config(config({"name": "resnet34", "weights": "resnet34.torchvision"}))
    with pytest.raises(MissingWeightsError) as missing:
        train(cfg, home=home, root=scenes, progress=False)
    message = str(missing.value)
    assert isinstance(missing.value, GeovisionError)
    assert str(port_folder("resnet34.torchvision", home)) in message
    assert ("dagster asset materialize -m geovision_assets.definitions --select ported_weights "
            "--partition resnet34.torchvision") in message
    assert f"port_weights('resnet34.torchvision', '{home}')" in message
    assert not (home / "runs").exists()  # no run was started


def test_a_missing_file_is_named(scenes, tmp_path):
    cfg = parse_config(config(SMALL | {"weights": str(tmp_path / "none" / "w.safetensors")}))
    with pytest.raises(MissingWeightsError, match=str(tmp_path / "none" / "w.safetensors")):
        train(cfg, home=tmp_path / "home", root=scenes, progress=False)


def test_the_cli_reports_a_missing_port_in_one_line(tmp_path):
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(config({"name": "resnet34",
                                           "weights": "resnet34.torchvision"})))
    done = subprocess.run([sys.executable, "-m", "geovision.cli", "train", str(path),
                           "--no-build", "--home", str(tmp_path / "home")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert "--select ported_weights --partition resnet34.torchvision" in done.stderr


def test_configs_without_weights_keep_their_hash():
    cfg = parse_config(config(SMALL))
    dumped = cfg.model_dump(mode="json")
    assert dumped["model"] == {"name": "small_cnn", "kwargs": {"width": 8, "depth": 2}}
    with_weights = parse_config(config(SMALL | {"weights": "./mine/manifest.json"}))
    assert with_weights.model.weights == "./mine/manifest.json"
    assert with_weights.config_hash() != cfg.config_hash()
    again = parse_config(json.loads(json.dumps(with_weights.model_dump(mode="json"))))
    assert again == with_weights
