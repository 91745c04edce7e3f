"""The ported_weights asset: one partition per port, made once from the published checkpoint in
the library's cache, versioned by its content; a checkpoint that is not there is named."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import torch
from dagster import AssetKey, DagsterInstance, materialize
from dagster_aws.s3 import S3Resource
from safetensors.torch import load_file

from geovision.models import create_model
from geovision.models.port import list_ports, verify
from geovision.models.weights import WeightsSpec
from geovision_assets.assets.weights import ported_weights
from geovision_assets.partitions import port_partitions
from geovision_assets.resources import GeovisionHome
from tests.checkpoints import hf_checkpoint, torchvision_checkpoint


def test_partitions_are_the_ports():
    assert port_partitions.get_partition_keys() == list_ports()
    assert "resnet50.torchvision" in list_ports() and "efficientnet_b0.timm" in list_ports()


def test_materializing_a_port_writes_it_once(tmp_path, torch_home):
    file = torchvision_checkpoint(torch_home, "ResNet18_Weights.IMAGENET1K_V1")
    instance = DagsterInstance.ephemeral()
    resources = {"home": GeovisionHome(path=str(tmp_path)), "s3": S3Resource()}
    key = "resnet18.torchvision"
    result = materialize([ported_weights], partition_key=key, instance=instance,
                         resources=resources)
    assert result.success
    folder = tmp_path / "weights" / key
    spec = WeightsSpec.read(folder)
    assert spec.verified_max_abs_diff == 0.0 and spec.model == "resnet18"
    sha256 = hashlib.sha256(file.read_bytes()).hexdigest()
    assert spec.source_weights == ("torchvision ResNet18_Weights.IMAGENET1K_V1 "
                                   f"resnet18-f37072fd.pth sha256 {sha256}")
    event = instance.get_latest_materialization_event(AssetKey("ported_weights"))
    materialization = event.asset_materialization
    assert materialization.partition == key
    assert materialization.tags["dagster/data_version"] == spec.sha256
    summary = materialization.metadata["summary"].data
    assert summary["published_url"] == "https://download.pytorch.org/models/resnet18-f37072fd.pth"
    assert summary["source_weights"] == spec.source_weights
    # The port holds the cached file's weights: the source model built from it agrees.
    import torchvision

    source = torchvision.models.resnet18(weights=None)
    source.load_state_dict(torch.load(file, weights_only=True))
    ours = create_model("resnet18", in_channels=3, num_classes=1000, weights=folder)
    assert verify(ours, source.eval(), seed=2) <= 1e-5
    mtime = spec.path.stat().st_mtime_ns
    assert materialize([ported_weights], partition_key=key, instance=instance,
                       resources=resources).success
    assert spec.path.stat().st_mtime_ns == mtime  # kept, not ported again


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_cli_ports_from_the_hub_cache_offline_and_names_a_missing_checkpoint(tmp_path):
    """`dagster asset materialize` as on an offline server: a timm port from a pre-seeded
    Hugging Face cache (HF_HUB_OFFLINE=1); a torchvision port whose file is not in
    $TORCH_HOME and cannot be downloaded fails naming the URL and where to put the file."""
    import timm

    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    shutil.copy("dagster.yaml", dagster_home / "dagster.yaml")
    home = tmp_path / "home"
    snapshot = hf_checkpoint(tmp_path / "hf", "efficientnet_b0.ra_in1k")
    proxy = f"http://127.0.0.1:{closed_port()}"  # every download is refused
    env = os.environ | {"DAGSTER_HOME": str(dagster_home), "GEOVISION_HOME": str(home),
                        "HF_HUB_CACHE": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1",
                        "TORCH_HOME": str(tmp_path / "torch"), "https_proxy": proxy,
                        "HTTPS_PROXY": proxy, "no_proxy": "", "NO_PROXY": ""}
    dagster = Path(sys.executable).parent / "dagster"

    def materialize_cli(partition: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(dagster), "asset", "materialize", "-m", "geovision_assets.definitions",
             "--select", "ported_weights", "--partition", partition],
            env=env, capture_output=True, text=True, timeout=300)

    done = materialize_cli("efficientnet_b0.timm")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    folder = home / "weights" / "efficientnet_b0.timm"
    manifest = json.loads((folder / "manifest.json").read_text())
    sha256 = hashlib.sha256(snapshot.read_bytes()).hexdigest()
    assert manifest["source_weights"] == (f"timm timm/efficientnet_b0.ra_in1k model.safetensors "
                                          f"sha256 {sha256}")
    assert manifest["extra"]["published_url"] == (
        "https://huggingface.co/timm/efficientnet_b0.ra_in1k/resolve/main/model.safetensors")
    assert manifest["extra"]["sha256_matches_published"] is True  # the blob's name
    source = timm.create_model("efficientnet_b0", pretrained=False)
    source.load_state_dict(load_file(str(snapshot)))
    ours = create_model("efficientnet_b0", in_channels=3, num_classes=1000, weights=folder)
    assert verify(ours, source.eval(), seed=2, size=32) <= 1e-5

    done = materialize_cli("resnet18.torchvision")
    assert done.returncode != 0
    output = done.stdout + done.stderr
    cache = tmp_path / "torch" / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    assert "MissingWeightsError" in output
    assert ("https://download.pytorch.org/models/resnet18-f37072fd.pth, and downloading it "
            "failed") in output
    assert f"copy it to {cache}" in output
    assert "--select ported_weights --partition resnet18.torchvision" in output
    assert not (home / "weights" / "resnet18.torchvision").exists()
    assert not list((tmp_path / "torch").rglob("*.pth*"))  # no partial download left
