"""Shared fixtures: the built-in dataset generated once per session, an isolated artifact root."""

from __future__ import annotations

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


@pytest.fixture()
def torch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty $TORCH_HOME, whose hub/checkpoints/ torch.hub reads published weights from."""
    home = tmp_path / "torch"
    monkeypatch.setenv("TORCH_HOME", str(home))
    return home


def require_service(name: str, host: str, port: int) -> None:
    """Skip when a local service is unreachable; fail instead under
    GEOVISION_REQUIRE_SERVICES=1 (as in CI), where every service must be there."""
    try:
        socket.create_connection((host, port), timeout=2).close()
    except OSError as exc:
        from tests.servers import missing

        missing(f"{name} is not reachable on {host}:{port} ({exc}); start it to run this test")


@pytest.fixture(scope="session")
def s3_server():
    """moto's S3 server on loopback for the whole session (tests use their own buckets)."""
    from tests.servers import start_moto

    server, info = start_moto()
    yield info
    server.stop()


@pytest.fixture()
def s3_env(s3_server, monkeypatch: pytest.MonkeyPatch):
    """The S3 server's endpoint and credentials exported as a user would (the AWS chain)."""
    for key, value in s3_server.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("S3_ENDPOINT_URL", s3_server.endpoint_url)
    return s3_server


@pytest.fixture()
def sshd(tmp_path: Path):
    """A real OpenSSH server on a free loopback port, keys generated for this test."""
    from tests.servers import start_sshd

    server = start_sshd(tmp_path / "sshd")
    yield server
    server.process.terminate()
    server.process.wait(timeout=10)
