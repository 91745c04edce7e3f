"""Satellite fixtures: the providers' hosts on loopback (a download server with Basic auth
and fault injection, stac-fastapi-static over a static catalogue of EnMAP items) and a
satellite.yaml pointing at them."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from geovision.layout import Layout
from geovision.satellite import samples
from geovision.satellite.config import load_config
from geovision.satellite.standin import FileServer, StacServer, stac_python

USER, PASSWORD = "eoc-user", "s3cret-pw"
DENIED_USER = "no-permission"
MAXAR_KEY = "maxar-test-key"
# Three EnMAP datatakes on three days; the first was reprocessed (V010302 -> V010402).
T0 = datetime(2026, 11, 28, 10, 1, 32, tzinfo=UTC)


def require_stac_python() -> Path:
    """The STAC stand-in's interpreter; skip (or fail under GEOVISION_REQUIRE_SERVICES=1)
    when `make stac-venv` has not built it."""
    python = stac_python()
    if python is None:
        message = ("the STAC stand-in's environment .venv-stac is missing; run `make stac-venv`"
                   " to run this test")
        if os.environ.get("GEOVISION_REQUIRE_SERVICES") == "1":
            pytest.fail(message + " (GEOVISION_REQUIRE_SERVICES=1 requires it)")
        pytest.skip(message)
    return python


@pytest.fixture(scope="session")
def file_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("download-host")
    with FileServer(root, users={USER: PASSWORD, DENIED_USER: "pw"},
                    denied={DENIED_USER}, login_redirect=True,
                    public=("/Products/*",),  # PRISMA links carry a token
                    tokens={"MAXAR-API-KEY": MAXAR_KEY}) as server:
        yield server


@pytest.fixture()
def files(file_server):
    """The session's download host, with no faults and an empty log."""
    file_server.clear_faults()
    with file_server.state.lock:
        file_server.state.log.clear()
    yield file_server
    file_server.clear_faults()


def enmap_items(files_root: Path) -> list[samples.CatalogueItem]:
    from datetime import timedelta

    return [
        samples.enmap_item(files_root, 24647, 25, T0, version="V010302",
                           processed=datetime(2023, 7, 1, tzinfo=UTC), seed=1),
        samples.enmap_item(files_root, 24647, 25, T0, version="V010402",
                           processed=datetime(2024, 6, 30, tzinfo=UTC), seed=2),
        samples.enmap_item(files_root, 24650, 3, T0 + timedelta(days=1), seed=3, cloud=40.0),
        samples.enmap_item(files_root, 24655, 7, T0 + timedelta(days=2), seed=4, quality=2),
        # outside the area of interest
        samples.enmap_item(files_root, 24660, 1, T0 + timedelta(days=2), seed=5,
                           bbox=(100.0, 10.0, 100.4, 10.3)),
        samples.worldview_item(files_root, "058800151040", "1040010012345602",
                               T0 + timedelta(days=1, hours=1), seed=6),
    ]


@pytest.fixture(scope="session")
def stac(file_server, tmp_path_factory):
    """stac-fastapi-static over the EnMAP catalogue, assets on the session's file server."""
    python = require_stac_python()
    items = enmap_items(file_server.state.root)
    catalog = samples.write_catalogue(tmp_path_factory.mktemp("stac") / "catalog",
                                      items, file_server.url, file_server.state.root)
    with StacServer(catalog, python) as server:
        yield server


AOI = [10.0, 47.5, 11.0, 48.5]


def write_config(path: Path, stac_url: str | None, *, budget: int = 4,
                 extra: dict | None = None, start: str = "2026-11-01") -> Path:
    providers: dict = {}
    if stac_url:
        providers["enmap"] = {
            "url": stac_url, "daily_budget": budget, "areas": [AOI], "start": start,
            "lookback_days": 3650, "retries": 3,
            "auth": {"username_env": "TEST_ENMAP_USER", "password_env": "TEST_ENMAP_PASSWORD",
                     "hosts": []}}
    providers["prisma"] = {"daily_budget": budget, "start": start, "lookback_days": 3650,
                           "retries": 3}
    providers["worldview"] = {"preset": "worldview_esa", "daily_budget": budget,
                              "start": start, "lookback_days": 3650}
    for name, entry in (extra or {}).items():
        providers.setdefault(name, {}).update(entry)
    path.write_text(yaml.safe_dump({"providers": providers}))
    return path


@pytest.fixture()
def env(tmp_path, monkeypatch, stac):
    """An artifact root, a satellite.yaml for the stand-ins and its loaded config."""
    home = tmp_path / "home"
    monkeypatch.setenv("GEOVISION_HOME", str(home))
    monkeypatch.setenv("TEST_ENMAP_USER", USER)
    monkeypatch.setenv("TEST_ENMAP_PASSWORD", PASSWORD)
    path = write_config(tmp_path / "satellite.yaml", stac.url)
    monkeypatch.setenv("GEOVISION_SATELLITE_CONFIG", str(path))
    layout = Layout(home)
    config = load_config(path)
    return layout, config, config.open_ledger(layout), path
