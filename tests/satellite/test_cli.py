"""`geovision satellite ...` in a subprocess, as a user runs it, on the loopback stand-ins."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime

from geovision.satellite import samples
from tests.satellite.conftest import PASSWORD, T0, USER, write_config


def geovision(*args: str, env: dict) -> subprocess.CompletedProcess:
    code = "from geovision.cli import main; main()"
    return subprocess.run([sys.executable, "-c", code, "satellite", *args], env=env,
                          capture_output=True, text=True, timeout=300)


def test_search_fetch_quota_inbox(stac, files, tmp_path):
    config = write_config(tmp_path / "satellite.yaml", stac.url, budget=2)
    env = {**os.environ, "GEOVISION_HOME": str(tmp_path / "home"),
           "GEOVISION_SATELLITE_CONFIG": str(config), "TEST_ENMAP_USER": USER,
           "TEST_ENMAP_PASSWORD": PASSWORD}
    found = geovision("search", "enmap", "--start", "2026-11-01", env=env)
    assert found.returncode == 0, found.stderr
    lines = found.stdout.splitlines()
    assert lines[-1] == "3 scenes found"
    assert lines[0].startswith("enmap:DT0000024647_025") and "V010402" in lines[0]
    assert "cloud 40%" in lines[1] and "new" in lines[1]

    fetched = geovision("fetch", "enmap", env=env)
    assert fetched.returncode == 0, fetched.stderr
    assert fetched.stdout.count(": fetched, 224 bands") == 2

    refused = geovision("fetch", "enmap", "DT0000024655_007", env=env)
    today = datetime.now(UTC).date().isoformat()
    assert refused.returncode == 2
    assert f"error: enmap: 2/2 scenes used for {today}; next window" in refused.stderr
    assert "Traceback" not in refused.stderr

    inbox = tmp_path / "delivered"
    delivery = samples.make_prisma(inbox, T0, seed=4)
    quota = geovision("inbox", "prisma", "--add", str(delivery), env=env)
    assert quota.returncode == 0, quota.stderr
    assert "20261128100132_20261128100136" in quota.stdout and "1 deliveries" in quota.stdout

    shown = geovision("quota", env=env)
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    assert f"enmap {today}: 2/2 used; next window" in out
    assert out.count("  done") == 2 and "found, not fetched yet: 1" in out
    assert f"prisma {today}: 0/2 used" in out
