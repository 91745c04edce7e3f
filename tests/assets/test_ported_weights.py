"""The ported_weights asset: one partition per port, made once, versioned by its content."""

from __future__ import annotations

from dagster import AssetKey, DagsterInstance, materialize
from dagster_aws.s3 import S3Resource

from geovision.models.port import list_ports
from geovision.models.weights import WeightsSpec
from geovision_assets.assets.weights import ported_weights
from geovision_assets.partitions import port_partitions
from geovision_assets.resources import GeovisionHome


def test_partitions_are_the_ports():
    assert port_partitions.get_partition_keys() == list_ports()
    assert "resnet50.torchvision" in list_ports() and "efficientnet_b0.timm" in list_ports()


def test_materializing_a_port_writes_it_once(tmp_path):
    instance = DagsterInstance.ephemeral()
    resources = {"home": GeovisionHome(path=str(tmp_path)), "s3": S3Resource()}
    key = "resnet18.torchvision"
    result = materialize([ported_weights], partition_key=key, instance=instance,
                         resources=resources)
    assert result.success
    folder = tmp_path / "weights" / key
    spec = WeightsSpec.read(folder)
    assert spec.verified_max_abs_diff == 0.0 and spec.model == "resnet18"
    event = instance.get_latest_materialization_event(AssetKey("ported_weights"))
    materialization = event.asset_materialization
    assert materialization.partition == key
    assert materialization.tags["dagster/data_version"] == spec.sha256
    mtime = spec.path.stat().st_mtime_ns
    assert materialize([ported_weights], partition_key=key, instance=instance,
                       resources=resources).success
    assert spec.path.stat().st_mtime_ns == mtime  # kept, not ported again
