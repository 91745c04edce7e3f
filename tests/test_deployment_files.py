"""The deployment files parse, pass their linters and schemas, and agree with each other (no
Docker engine or pixi is needed)."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import jsonschema
import pytest
import yaml
from dagster._config import validate_config
from dagster._core.instance.config import dagster_instance_config_schema

BIN = Path(sys.executable).parent
# pixi's published manifest schema (its $id names the version), kept beside the docker files.
PIXI_SCHEMA = Path("docker/schemas/pixi-manifest-0.77.0.json")


def tool(name: str) -> str:
    path = BIN / name
    found = str(path) if path.exists() else shutil.which(name)
    assert found, f"{name} is not installed: pip install -e '.[dev]'"
    return found


@pytest.mark.parametrize("path", ["dagster.yaml", "docker/dagster.yaml"])
def test_instance_config_is_valid(path):
    config = yaml.safe_load(Path(path).read_text())
    result = validate_config(dagster_instance_config_schema(), config)
    assert result.success, [e.message for e in result.errors]


def test_dgx_instance_settings():
    config = yaml.safe_load(Path("docker/dagster.yaml").read_text())
    assert config["storage"]["postgres"]["postgres_db"]["scheme"] == "postgresql+psycopg2"
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert config["run_retries"] == {"enabled": True, "max_retries": 1}
    assert config["concurrency"]["pools"]["default_limit"] == 1


def test_dockerfile_passes_hadolint(tmp_path):
    done = subprocess.run([tool("hadolint"), "docker/Dockerfile"], capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN cd /tmp && pip install x\n")
    failed = subprocess.run([tool("hadolint"), str(bad)], capture_output=True, text=True)
    assert failed.returncode != 0 and "DL3007" in failed.stdout  # the linter does lint


def compose_check(path: Path) -> subprocess.CompletedProcess:
    """Validate against the published compose-spec schema (as `docker compose config` does)."""
    return subprocess.run([tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec",
                           str(path)], capture_output=True, text=True)


def test_compose_matches_the_compose_spec(tmp_path):
    done = compose_check(Path("docker/compose.yaml"))
    assert done.returncode == 0, done.stdout + done.stderr
    broken = yaml.safe_load(Path("docker/compose.yaml").read_text())
    broken["services"]["code"]["shm_size"] = {"gb": 16}
    broken["services"]["code"]["gpus_please"] = True
    (tmp_path / "compose.yaml").write_text(yaml.safe_dump(broken))
    failed = compose_check(tmp_path / "compose.yaml")
    assert failed.returncode != 0 and "gpus_please" in failed.stdout + failed.stderr


def test_compose_wires_the_services():
    compose = yaml.safe_load(Path("docker/compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"postgres", "code", "webserver", "daemon", "redis", "worker"}
    assert services["code"]["build"]["dockerfile"] == "docker/Dockerfile"
    for name, count in (("code", "all"), ("worker", 1)):
        gpu = services[name]["deploy"]["resources"]["reservations"]["devices"][0]
        assert gpu["capabilities"] == ["gpu"] and gpu["count"] == count
        assert services[name]["shm_size"] == "16gb"
        assert "/data/geovision" in services[name]["volumes"][0]
        assert "GEOVISION_ARTIFACT_ROOT" in services[name]["environment"]
    assert services["worker"]["profiles"] == services["redis"]["profiles"] == ["celery"]
    # workers on other nodes reach the DGX's broker and storage by its name
    assert services["redis"]["ports"] == ["6379:6379"]
    assert services["postgres"]["ports"] == ["5432:5432"]
    for name in ("code", "webserver", "daemon", "worker"):
        assert services[name]["environment"]["POSTGRES_HOST"] == "postgres"
    workspace = yaml.safe_load(Path("docker/workspace.yaml").read_text())
    server = workspace["load_from"][0]["grpc_server"]
    assert server["host"] == "code" and str(server["port"]) in Path(
        "docker/Dockerfile").read_text()
    dockerfile = Path("docker/Dockerfile").read_text()
    for copied in ("docker/dagster.yaml", "docker/workspace.yaml", "docker/celery.yaml",
                   "constraints.txt"):
        assert copied in dockerfile
    assert "/opt/geovision/docker/celery.yaml" in services["worker"]["command"]


def test_celery_worker_config_is_valid(monkeypatch):
    from dagster_celery.cli import get_validated_config

    monkeypatch.setenv("GEOVISION_CELERY_BROKER", "redis://dgx:6379/0")
    monkeypatch.setenv("GEOVISION_CELERY_BACKEND", "redis://dgx:6379/1")
    config = get_validated_config("docker/celery.yaml")
    assert (config["broker"], config["backend"]) == ("redis://dgx:6379/0", "redis://dgx:6379/1")


def test_pixi_manifest_matches_pixi_schema_and_constraints():
    schema = json.loads(PIXI_SCHEMA.read_text())
    validator = jsonschema.Draft7Validator(schema)
    manifest = tomllib.loads(Path("pixi.toml").read_text())
    errors = [e.message for e in validator.iter_errors(manifest)]
    assert not errors, errors
    assert list(validator.iter_errors(manifest | {"dependncies": {"python": "3.11"}}))
    # the same environment as make setup: the project's dev extra at constraints.txt's pins
    assert manifest["pypi-dependencies"]["geovision"]["extras"] == ["dev"]
    overrides = manifest["pypi-options"]["dependency-overrides"]
    pins = dict(line.split("==") for line in Path("constraints.txt").read_text().split())
    assert overrides == {name: f"=={version}" for name, version in pins.items()}
    spec = importlib.util.spec_from_file_location("pixi_manifest", "docker/pixi_manifest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert Path("pixi.toml").read_text() == module.manifest(), "run make pixi.toml"
