"""`make satellite-demo --no-ui`: the stand-ins come up, the enmap sensor requests the budget,
its runs materialize, and the next ticks skip with the reason."""

from __future__ import annotations

from datetime import UTC, datetime

from dagster import AssetKey, DagsterInstance

from geovision_assets.satellite_demo import main
from tests.satellite.conftest import require_stac_python


def test_headless_demo(tmp_path, monkeypatch, capsys):
    require_stac_python()
    dagster_home = tmp_path / "dagster"
    dagster_home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    monkeypatch.setenv("GEOVISION_HOME", str(tmp_path / "home"))
    for name in ("GEOVISION_SATELLITE_CONFIG", "GEOVISION_DEMO_ENMAP_USER",
                 "GEOVISION_DEMO_ENMAP_PASSWORD", "GEOVISION_SATELLITE_SENSOR_INTERVAL"):
        monkeypatch.setenv(name, "")  # recorded, so what the demo sets is undone afterwards
        monkeypatch.delenv(name)
    assert main(["--no-ui"]) == 0
    lines = capsys.readouterr().out.splitlines()
    today = datetime.now(UTC).date().isoformat()
    requested = [line for line in lines if line.startswith("requested ")]
    assert len(requested) == 1 and requested[0].count("enmap:") == 4
    assert sum(line.endswith(": materialized") for line in lines) == 4
    assert lines[-2:] == [f"enmap: 4/4 used for {today}; next window 00:00 UTC"] * 2
    instance = DagsterInstance.get()
    partitions = instance.get_materialized_partitions(AssetKey("satellite_scene"))
    assert len(partitions) == 4 and all(p.startswith("enmap:") for p in partitions)
    assert (tmp_path / "home" / "satellite" / "satellite-demo.yaml").is_file()
