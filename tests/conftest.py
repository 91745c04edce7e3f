"""Shared fixtures: the built-in dataset generated once per session, an isolated artifact root."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from geovision.data.datasets.synthetic import generate


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default synthetic generation (400 scenes, 64 px, seed 0), shared read-only."""
    return generate(tmp_path_factory.mktemp("synthetic") / "synthetic", progress=False)


@pytest.fixture()
def geovision_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh artifact root for one test, also exported as $GEOVISION_HOME."""
    home = tmp_path / "home"
    monkeypatch.setenv("GEOVISION_HOME", str(home))
    return home


def require_service(name: str, host: str, port: int) -> None:
    """Skip when a local service is unreachable; fail instead under
    GEOVISION_REQUIRE_SERVICES=1 (as in CI), where every service must be there."""
    try:
        socket.create_connection((host, port), timeout=2).close()
    except OSError as exc:
        message = f"{name} is not reachable on {host}:{port} ({exc}); start it to run this test"
        if os.environ.get("GEOVISION_REQUIRE_SERVICES") == "1":
            pytest.fail(message + " (GEOVISION_REQUIRE_SERVICES=1 requires it)")
        pytest.skip(message)
