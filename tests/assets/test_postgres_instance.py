"""The DGX instance config (docker/dagster.yaml, Postgres storage) records materializations."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import yaml
from dagster import AssetKey, DagsterInstance, materialize

from geovision_assets.assets.datasets import dataset_index, raw_dataset
from geovision_assets.definitions import default_resources
from tests.conftest import require_service

HOST, PORT = "127.0.0.1", 5432


@pytest.fixture()
def postgres_database():
    """A fresh database on the local server, dropped afterwards."""
    require_service("PostgreSQL", HOST, PORT)
    import psycopg2

    name = f"geovision_test_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(host=HOST, port=PORT, user="postgres", dbname="test")
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE {name}")
    try:
        yield name
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()


def test_docker_instance_config_stores_runs_in_postgres(postgres_database, tmp_path,
                                                         monkeypatch):
    config = yaml.safe_load(Path("docker/dagster.yaml").read_text())
    config["storage"]["postgres"]["postgres_db"]["hostname"] = HOST
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(config))
    monkeypatch.setenv("POSTGRES_USER", "postgres")
    monkeypatch.setenv("POSTGRES_PASSWORD", "unused-with-trust-auth")
    monkeypatch.setenv("POSTGRES_DB", postgres_database)
    monkeypatch.setenv("GEOVISION_HOME", str(tmp_path / "home"))
    with DagsterInstance.from_config(str(tmp_path)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        result = materialize([raw_dataset, dataset_index], partition_key="synthetic",
                             instance=instance, resources=default_resources())
        assert result.success
        event = instance.get_latest_materialization_event(AssetKey("dataset_index"))
        assert event.asset_materialization.metadata["num_rows"].value == 400
        assert instance.get_run_by_id(result.run_id).is_success
