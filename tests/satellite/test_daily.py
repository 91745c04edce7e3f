"""The daily cycle end to end on the stand-ins: ticks, manual runs and retries within the
budget, reprocessed duplicates fetched once, resume after truncation, the manifest."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from geovision.errors import AuthError, QuotaError
from geovision.satellite import download_scene, load_config, open_scene, plan_tick, verify_scene
from tests.satellite.conftest import write_config

NOON = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.fixture()
def budget2(env, tmp_path, stac):
    layout, _, ledger, _ = env
    config = load_config(write_config(tmp_path / "two.yaml", stac.url, budget=2))
    return layout, config, ledger


def test_budget_holds_across_ticks_manual_runs_and_retries(budget2, files):
    layout, config, ledger = budget2
    plan = plan_tick(config, "enmap", layout, ledger, now=NOON)
    assert plan.skip_reason is None and plan.found == 3
    keys = [s.scene_key for s in plan.requests]
    assert keys == ["DT0000024647_025", "DT0000024650_003"]  # oldest first, 2 of 3
    # the sensor ticks again while both runs wait: nothing more
    waiting = plan_tick(config, "enmap", layout, ledger, now=NOON, in_flight=keys)
    assert waiting.requests == () and "0/2 used" in waiting.skip_reason
    assert "(2 more requested, waiting to run)" in waiting.skip_reason
    results = [download_scene(config, f"enmap:{k}", layout, ledger, now=NOON) for k in keys]
    assert all(not r.reused for r in results)
    later = plan_tick(config, "enmap", layout, ledger, now=NOON + timedelta(hours=1))
    assert later.skip_reason == "enmap: 2/2 used for 2026-11-30; next window 00:00 UTC"
    # a manual materialization of the third scene is refused by the ledger
    with pytest.raises(QuotaError, match="2/2 scenes used for 2026-11-30"):
        download_scene(config, "enmap:DT0000024655_007", layout, ledger, now=NOON)
    # a retry of a done scene fetches nothing and costs nothing
    before = len(files.state.log)
    again = download_scene(config, f"enmap:{keys[0]}", layout, ledger, now=NOON)
    assert again.reused and len(files.state.log) == before
    assert ledger.used("enmap", "2026-11-30") == 2
    # the next UTC day brings the third
    tomorrow = plan_tick(config, "enmap", layout, ledger, now=NOON + timedelta(days=1))
    assert [s.scene_key for s in tomorrow.requests] == ["DT0000024655_007"]


def test_reprocessed_duplicate_is_fetched_once(env, files):
    layout, config, ledger, _ = env
    plan = plan_tick(config, "enmap", layout, ledger, now=NOON)
    first = plan.requests[0]
    assert first.scene_key == "DT0000024647_025" and "V010402" in first.product_id
    result = download_scene(config, first.partition_key, layout, ledger, now=NOON)
    paths = [path for path, _, _ in files.state.log]
    assert paths and all("V010402" in p for p in paths)
    assert not any("V010302" in p for p in paths)
    manifest = json.loads(result.manifest.read_text())
    assert manifest["product_id"] == first.product_id
    # later ticks never request it again
    for day in range(1, 3):
        plan = plan_tick(config, "enmap", layout, ledger, now=NOON + timedelta(days=day))
        assert first.scene_key not in [s.scene_key for s in plan.requests]


def test_truncated_download_resumes_and_the_manifest_is_complete(env, files):
    layout, config, ledger, _ = env
    files.inject("*SPECTRAL_IMAGE_COG.TIF", "truncate")
    plan_tick(config, "enmap", layout, ledger, now=NOON)
    result = download_scene(config, "enmap:DT0000024650_003", layout, ledger, now=NOON)
    image = [(r, s) for p, r, s in files.state.log if p.endswith("SPECTRAL_IMAGE_COG.TIF")]
    assert image[0] == (None, 200) and image[1][1] == 206 and image[1][0].startswith("bytes=")
    assert verify_scene(result.path) == []
    manifest = json.loads(result.manifest.read_text())
    names = {f["path"] for f in manifest["files"]}
    assert {"scene.tif", "quicklook.png"} <= names
    hrefs = [f["href"] for f in manifest["files"] if "href" in f]
    assert len(hrefs) == 2 and all(h.startswith("http://127.0.0.1:") for h in hrefs)
    assert manifest["cloud_cover"] == 40.0 and len(manifest["bands"]) == 224
    info = open_scene(result.scene)
    assert info.scene_key == "DT0000024650_003" and len(info.band_names) == 224
    assert result.bytes == sum(f["bytes"] for f in manifest["files"])
    assert ledger.rows("enmap")[0].state == "done"
    # damage is found by the check
    result.quicklook.write_bytes(b"not a png")
    assert any("quicklook.png" in p for p in verify_scene(result.path))


def test_refused_credentials_give_the_unit_back(env, files, monkeypatch):
    layout, config, ledger, _ = env
    monkeypatch.setenv("TEST_ENMAP_PASSWORD", "wrong")
    plan_tick(config, "enmap", layout, ledger, now=NOON)
    with pytest.raises(AuthError, match="login page"):
        download_scene(config, "enmap:DT0000024650_003", layout, ledger, now=NOON)
    [row] = ledger.rows("enmap")
    assert row.state == "released" and "login page" in row.error
    assert ledger.used("enmap", "2026-11-30") == 0
    assert "wrong" not in row.error  # no secret in the record


def test_worldview_through_a_maxar_style_stac_with_an_api_key(env, files, tmp_path,
                                                              monkeypatch, stac):
    from tests.satellite.conftest import MAXAR_KEY

    layout, _, ledger, _ = env
    monkeypatch.setenv("TEST_MAXAR_KEY", MAXAR_KEY)
    path = write_config(tmp_path / "maxar.yaml", stac.url, extra={"worldview": {
        "preset": "maxar", "url": stac.url, "collections": ["wv03-vnir"],
        "areas": [[10.0, 47.5, 11.0, 48.5]],
        "auth": {"token_env": "TEST_MAXAR_KEY"}}})
    config = load_config(path)
    plan = plan_tick(config, "worldview", layout, ledger, now=NOON)
    [scene] = plan.requests
    assert scene.scene_key == "1040010012345602" and scene.cloud_cover == 2.0
    result = download_scene(config, scene.partition_key, layout, ledger, now=NOON)
    info = open_scene(result.scene)
    assert info.band_names == ("C", "B", "G", "Y", "R", "RE", "N", "N2")
    assert info.quantity == "toa_reflectance" and info.wavelengths_nm[4] == 660.1
    assert files.state.log[-1][2] == 200  # the key header opened the download host
    # a damaged scene folder is rebuilt from the verified zip it kept: no request, no charge
    monkeypatch.setenv("TEST_MAXAR_KEY", "revoked")
    result.manifest.unlink()
    requests_before = len(files.state.log)
    again = download_scene(config, scene.partition_key, layout, ledger, now=NOON)
    assert again.reused and len(files.state.log) == requests_before
    assert ledger.used("worldview", "2026-11-30") == 1
