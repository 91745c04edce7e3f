"""The Dagster side on the stand-ins: a provider's sensor requests up to the budget, then skips
with the reason; the asset materializes scenes with their metadata and check, and refuses a
run past the budget without retrying it."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from dagster import (
    AssetKey,
    DagsterEventType,
    DagsterInstance,
    SensorResult,
    SkipReason,
    build_sensor_context,
    materialize,
)

from geovision_assets.assets.satellite import satellite_scene
from geovision_assets.definitions import defs
from geovision_assets.resources import GeovisionHome, SatelliteSettings
from tests.satellite.conftest import write_config


@pytest.fixture()
def dagster_env(env, tmp_path, stac):
    layout, _, _, _ = env
    config = write_config(tmp_path / "two.yaml", stac.url, budget=2)
    resources = {"home": GeovisionHome(path=str(layout.home)),
                 "satellite": SatelliteSettings(config_path=str(config))}
    return DagsterInstance.ephemeral(), resources, layout


def tick(instance, resources, name="satellite_enmap"):
    sensor = defs.get_sensor_def(name)
    return sensor(build_sensor_context(instance=instance, resources=resources))


def test_sensor_requests_the_budget_then_skips_with_the_reason(dagster_env, files):
    instance, resources, layout = dagster_env
    sensor = defs.get_sensor_def("satellite_enmap")
    assert sensor.minimum_interval_seconds == 3600 and sensor.default_status.value == "STOPPED"
    result = tick(instance, resources)
    assert isinstance(result, SensorResult)
    keys = [r.partition_key for r in result.run_requests]
    today = datetime.now(UTC).date().isoformat()
    assert keys == ["enmap:DT0000024647_025", "enmap:DT0000024650_003"]
    assert [r.run_key for r in result.run_requests] == [f"{k}@{today}" for k in keys]
    assert result.run_requests[0].tags["geovision/provider"] == "enmap"
    [add] = result.dynamic_partitions_requests
    assert add.partitions_def_name == "satellite_scene" and list(add.partition_keys) == keys
    instance.add_dynamic_partitions("satellite_scene", keys)

    for key in keys:
        run = materialize([satellite_scene], partition_key=key, instance=instance,
                          resources=resources)
        assert run.success
    event = instance.get_latest_materialization_event(AssetKey("satellite_scene"))
    meta = event.asset_materialization.metadata
    manifest = layout.scene("enmap", "DT0000024650_003") / "manifest.json"
    assert meta["manifest"].value == str(manifest)
    assert meta["bands"].value == 224 and meta["cloud_cover"].value == 40.0
    assert meta["bytes"].value == sum(f["bytes"] for f in json.loads(manifest.read_text())
                                      ["files"])
    assert "![quicklook.png](data:image/png;base64," in meta["quicklook"].value
    from geovision.hashing import sha256_file

    assert event.asset_materialization.tags["dagster/data_version"] == sha256_file(manifest)
    [check] = run.get_asset_check_evaluations()
    assert check.check_name == "scene_files_open" and check.passed

    skipped = tick(instance, resources)
    assert isinstance(skipped, SkipReason)
    assert skipped.skip_message == f"enmap: 2/2 used for {today}; next window 00:00 UTC"


def test_a_run_past_the_budget_fails_without_retries(dagster_env, files):
    instance, resources, layout = dagster_env
    result = tick(instance, resources)
    keys = [r.partition_key for r in result.run_requests]
    instance.add_dynamic_partitions("satellite_scene", [*keys, "enmap:DT0000024655_007"])
    for key in keys:
        assert materialize([satellite_scene], partition_key=key, instance=instance,
                           resources=resources).success
    # a manual materialization of the third scene on the same day
    run = materialize([satellite_scene], partition_key="enmap:DT0000024655_007",
                      instance=instance, resources=resources, raise_on_error=False)
    assert not run.success
    types = [e.event_type for e in run.all_events]
    assert DagsterEventType.STEP_UP_FOR_RETRY not in types
    [failure] = [e for e in run.all_events if e.event_type == DagsterEventType.STEP_FAILURE]
    assert "2/2 scenes used" in failure.step_failure_data.error.message
    assert failure.step_failure_data.error.cls_name == "Failure"  # allow_retries=False
    assert satellite_scene.op.retry_policy.max_retries == 3  # other failures are retried


def test_unconfigured_provider_says_how_to_configure_it(dagster_env):
    instance, resources, _ = dagster_env
    skipped = tick(instance, resources, "satellite_worldview")  # an empty inbox
    assert skipped.skip_message.startswith("worldview: no new scenes (0 found")
    resources["satellite"] = SatelliteSettings(config_path="/nonexistent/satellite.yaml")
    skipped = tick(instance, resources, "satellite_prisma")
    assert "prisma: not configured in /nonexistent/satellite.yaml" in skipped.skip_message


def test_a_postgres_instance_keeps_the_ledger_in_its_database(env, tmp_path, stac, files,
                                                              monkeypatch):
    """The deployment's instance (docker/dagster.yaml) holds the ledger: every run and sensor
    of the deployment shares it, whichever container they run in."""
    import uuid
    from pathlib import Path

    import psycopg2
    import yaml

    from tests.conftest import require_service

    require_service("PostgreSQL", "127.0.0.1", 5432)
    name = f"geovision_test_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="test")
    admin.autocommit = True
    admin.cursor().execute(f"CREATE DATABASE {name}")
    try:
        settings = yaml.safe_load(Path("docker/dagster.yaml").read_text())
        settings["storage"]["postgres"]["postgres_db"]["hostname"] = "127.0.0.1"
        (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(settings))
        monkeypatch.setenv("POSTGRES_USER", "postgres")
        monkeypatch.setenv("POSTGRES_PASSWORD", "unused-with-trust-auth")
        monkeypatch.setenv("POSTGRES_DB", name)
        layout = env[0]
        resources = {"home": GeovisionHome(path=str(layout.home)),
                     "satellite": SatelliteSettings(config_path=str(write_config(
                         tmp_path / "one.yaml", stac.url, budget=1)))}
        with DagsterInstance.from_config(str(tmp_path)) as instance:
            result = tick(instance, resources)
            [key] = [r.partition_key for r in result.run_requests]
            instance.add_dynamic_partitions("satellite_scene", [key])
            assert materialize([satellite_scene], partition_key=key, instance=instance,
                               resources=resources).success
            assert "1/1 used" in tick(instance, resources).skip_message
        with psycopg2.connect(host="127.0.0.1", port=5432, user="postgres",
                              dbname=name) as conn, conn.cursor() as cur:
            cur.execute("SELECT provider, scene_key, state FROM satellite_quota")
            assert cur.fetchall() == [("enmap", key.split(":")[1], "done")]
        from geovision.satellite.ledger import QuotaLedger

        assert QuotaLedger(layout.quota_ledger()).rows() == []  # the SQLite one is untouched
    finally:
        admin.cursor().execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()
