"""StacProvider against a real STAC API (stac-fastapi-static on loopback) and a download host
with Basic auth: search by area, window and CQL2, paging caps, reprocessed duplicates, fetch."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from geovision.errors import AuthError
from geovision.hashing import sha256_file
from geovision.satellite.auth import AuthConfig
from geovision.satellite.providers import StacProvider
from tests.satellite.conftest import AOI, PASSWORD, USER

START, END = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 31, tzinfo=UTC)
BASIC = AuthConfig(type="basic", username_env="T_USER", password_env="T_PW")


@pytest.fixture(autouse=True)
def credentials(monkeypatch):
    monkeypatch.setenv("T_USER", USER)
    monkeypatch.setenv("T_PW", PASSWORD)


def provider(stac, **kwargs) -> StacProvider:
    return StacProvider("enmap", stac.url, ["ENMAP_HSI_L2A"], scene_key="enmap", auth=BASIC,
                        **kwargs)


def test_search_by_area_and_window_keeps_the_newest_processing(stac):
    scenes = provider(stac).search(AOI, START, END)
    # 4 items over the area, two of them the same datatake + tile reprocessed
    assert [s.scene_key for s in scenes] == ["DT0000024647_025", "DT0000024650_003",
                                             "DT0000024655_007"]
    first = scenes[0]
    assert "V010402" in first.product_id  # the 2024 reprocessing, not V010302
    assert first.acquired == datetime(2026, 11, 28, 10, 1, 32, tzinfo=UTC)
    assert first.cloud_cover == 5.0 and first.extra["enmap:datatakeID"] == 24647
    assert {a.key for a in first.assets} == {"image", "metadata"}  # roles data + metadata
    image = next(a for a in first.assets if a.key == "image")
    assert image.sha256 is not None and len(image.sha256) == 64 and image.size > 0
    assert first.footprint["type"] == "Polygon"


def test_cql2_filter_and_window(stac):
    good = provider(stac, filter="\"enmap:overallQuality\" = 0").search(AOI, START, END)
    assert [s.scene_key for s in good] == ["DT0000024647_025", "DT0000024650_003"]
    day = provider(stac).search(AOI, datetime(2026, 11, 29, tzinfo=UTC),
                                datetime(2026, 11, 29, 23, 59, tzinfo=UTC))
    assert [s.scene_key for s in day] == ["DT0000024650_003"]


def test_paging_is_capped(stac):
    one_a_page = provider(stac, page_size=1).search(AOI, START, END)
    assert len(one_a_page) == 3  # every page followed
    # 2 items at most: 2 scenes, or 1 when both are processings of the first scene
    capped = provider(stac, page_size=1, max_items=2).search(AOI, START, END)
    assert 1 <= len(capped) <= 2
    assert {s.scene_key for s in capped} <= {s.scene_key for s in one_a_page}


def test_fetch_with_basic_auth_verifies_checksums(stac, files, tmp_path):
    scene = provider(stac).search(AOI, START, END)[0]
    paths = provider(stac).fetch(scene, tmp_path / "dest")
    by_name = {p.name: p for p in paths}
    for asset in scene.assets:
        assert sha256_file(by_name[asset.filename]) == asset.sha256
    requests_before = len(files.state.log)
    provider(stac).fetch(scene, tmp_path / "dest")  # idempotent: nothing fetched again
    assert len(files.state.log) == requests_before


def test_login_page_instead_of_a_tiff_is_an_auth_error(stac, files, tmp_path):
    scene = provider(stac).search(AOI, START, END)[0]
    anonymous = StacProvider("enmap", stac.url, ["ENMAP_HSI_L2A"], scene_key="enmap")
    with pytest.raises(AuthError, match="EnMAP Access Service"):
        anonymous.fetch(scene, tmp_path / "dest")  # 302 to the SSO page, served with 200
    assert [s for _, _, s in files.state.log][:2] == [302, 200]
    assert not list((tmp_path / "dest").glob("*.TIF"))


def test_missing_credentials_name_the_variable(stac, tmp_path, monkeypatch):
    scene = provider(stac).search(AOI, START, END)[0]
    monkeypatch.delenv("T_USER")
    with pytest.raises(AuthError, match="T_USER"):
        provider(stac).fetch(scene, tmp_path / "dest")
