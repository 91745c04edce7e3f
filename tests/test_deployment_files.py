"""The deployment files parse and agree with each other (no Docker engine is needed)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from dagster._config import validate_config
from dagster._core.instance.config import dagster_instance_config_schema


@pytest.mark.parametrize("path", ["dagster.yaml", "docker/dagster.yaml"])
def test_instance_config_is_valid(path):
    config = yaml.safe_load(Path(path).read_text())
    result = validate_config(dagster_instance_config_schema(), config)
    assert result.success, [e.message for e in result.errors]


def test_dgx_storage_uses_psycopg2_scheme():
    config = yaml.safe_load(Path("docker/dagster.yaml").read_text())
    assert config["storage"]["postgres"]["postgres_db"]["scheme"] == "postgresql+psycopg2"


def test_compose_wires_the_services():
    compose = yaml.safe_load(Path("docker/compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"postgres", "code", "webserver", "daemon"}
    assert services["code"]["build"]["dockerfile"] == "docker/Dockerfile"
    gpu = services["code"]["deploy"]["resources"]["reservations"]["devices"][0]
    assert gpu["capabilities"] == ["gpu"]
    workspace = yaml.safe_load(Path("docker/workspace.yaml").read_text())
    server = workspace["load_from"][0]["grpc_server"]
    assert server["host"] == "code" and str(server["port"]) in Path(
        "docker/Dockerfile").read_text()
    dockerfile = Path("docker/Dockerfile").read_text()
    for copied in ("docker/dagster.yaml", "docker/workspace.yaml", "constraints.txt"):
        assert copied in dockerfile
