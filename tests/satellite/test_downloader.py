"""The scene downloader against the loopback download host's injected faults."""

from __future__ import annotations

import time

import pytest

from geovision.errors import AuthError, ChecksumError, DownloadError
from geovision.hashing import sha256_file
from geovision.satellite.auth import AuthConfig, RequestAuth
from geovision.satellite.fetch import fetch_assets
from geovision.satellite.samples import make_prisma
from geovision.satellite.scene import SceneAsset
from tests.satellite.conftest import DENIED_USER, PASSWORD, T0, USER


@pytest.fixture()
def product(files):
    """A PRISMA delivery zip on the download host: (asset, bytes)."""
    path = make_prisma(files.state.root / "ENMAP" / "tok", T0, seed=11)  # behind Basic auth
    rel = path.relative_to(files.state.root).as_posix()
    asset = SceneAsset("delivery", f"{files.url}/{rel}", ("data",), size=path.stat().st_size,
                       sha256=sha256_file(path))
    return asset, path.read_bytes()


def session(monkeypatch, user=USER):
    monkeypatch.setenv("DL_USER", user)
    monkeypatch.setenv("DL_PW", PASSWORD if user == USER else "pw")
    return RequestAuth(AuthConfig(type="basic", username_env="DL_USER", password_env="DL_PW"),
                       "prisma").session()


def fetch(asset, dest, sess, sleeps=None, **kwargs):
    return fetch_assets([asset], dest, provider="prisma", session=sess,
                        sleep=(sleeps.append if sleeps is not None else None), **kwargs)


def statuses(files):
    return [status for _, _, status in files.state.log]


def test_one_shot_429_waits_as_long_as_retry_after_says(files, product, tmp_path, monkeypatch):
    asset, data = product
    files.inject("*.zip", "429", retry_after="1")
    started = time.monotonic()
    [path] = fetch(asset, tmp_path, session(monkeypatch))
    assert time.monotonic() - started >= 1.0  # the real sleep honoured Retry-After: 1
    assert path.read_bytes() == data and statuses(files) == [429, 200]


def test_503_is_retried_with_backoff_and_jitter(files, product, tmp_path, monkeypatch):
    asset, data = product
    files.inject("*.zip", "503", times=2, retry_after="")
    sleeps: list[float] = []
    [path] = fetch(asset, tmp_path, session(monkeypatch), sleeps, backoff_s=2.0)
    assert path.read_bytes() == data and statuses(files) == [503, 503, 200]
    assert 1.0 <= sleeps[0] <= 3.0 and 2.0 <= sleeps[1] <= 6.0  # 2 s, 4 s, each +-50 %


def test_truncated_body_is_resumed_with_range(files, product, tmp_path, monkeypatch):
    asset, data = product
    files.inject("*.zip", "truncate")
    sleeps: list[float] = []
    [path] = fetch(asset, tmp_path, session(monkeypatch), sleeps)
    assert path.read_bytes() == data
    (_, first_range, first), (_, second_range, second) = files.state.log
    assert (first_range, first) == (None, 200)
    assert second == 206 and second_range == f"bytes={len(data) // 2}-"


def test_ignored_range_restarts_the_file(files, product, tmp_path, monkeypatch):
    asset, data = product
    part = tmp_path / (asset.filename + ".part")
    part.write_bytes(data[:1000])
    files.inject("*.zip", "ignore_range")
    [path] = fetch(asset, tmp_path, session(monkeypatch))
    assert path.read_bytes() == data
    assert files.state.log[0][1] == "bytes=1000-" and files.state.log[0][2] == 200


@pytest.mark.parametrize("fault", ["html", "403"])
def test_login_page_and_403_are_auth_errors_not_retried(files, product, tmp_path, monkeypatch,
                                                        fault):
    asset, _ = product
    files.inject("*.zip", fault)
    sleeps: list[float] = []
    with pytest.raises(AuthError, match="prisma"):
        fetch(asset, tmp_path, session(monkeypatch), sleeps)
    assert sleeps == [] and len(files.state.log) == 1
    assert not (tmp_path / asset.filename).exists()


def test_account_without_permission_gets_403(files, product, tmp_path, monkeypatch):
    asset, _ = product
    with pytest.raises(AuthError, match="403"):
        fetch(asset, tmp_path, session(monkeypatch, DENIED_USER))


def test_checksum_mismatch_is_refused(files, product, tmp_path, monkeypatch):
    asset, _ = product
    wrong = SceneAsset(asset.key, asset.href, asset.roles, size=asset.size, sha256="0" * 64)
    with pytest.raises(ChecksumError, match="sha256"):
        fetch(wrong, tmp_path, session(monkeypatch))
    assert not list(tmp_path.iterdir())


def test_a_zip_that_is_not_a_zip_is_refused(files, tmp_path, monkeypatch):
    (files.state.root / "bad.zip").write_bytes(b"\x00" * 4096)
    asset = SceneAsset("delivery", f"{files.url}/bad.zip", ("data",))
    with pytest.raises(DownloadError, match="zip file was expected"):
        fetch(asset, tmp_path, session(monkeypatch))


def test_a_zip_cut_inside_is_caught_when_opened(files, tmp_path, monkeypatch, product):
    _, data = product
    (files.state.root / "cut.zip").write_bytes(data[: len(data) // 2])  # no size published
    asset = SceneAsset("delivery", f"{files.url}/cut.zip", ("data",))
    with pytest.raises(DownloadError, match="does not open as zip"):
        fetch(asset, tmp_path, session(monkeypatch), retries=0)
    assert not (tmp_path / "cut.zip").exists()
