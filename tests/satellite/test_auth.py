"""Credentials are looked up when each request is sent: rotated tokens apply at once, hosts
limit where they go, and satellite.yaml cannot hold a secret."""

from __future__ import annotations

import base64

import pytest

from geovision.errors import AuthError, ConfigError
from geovision.satellite.auth import AuthConfig, RequestAuth
from geovision.satellite.config import parse_config


def test_header_token_is_read_per_request(monkeypatch):
    auth = RequestAuth(AuthConfig(type="header", header="MAXAR-API-KEY", token_env="K"), "mx")
    monkeypatch.setenv("K", "first")
    assert auth.headers_for("https://api.maxar.com/x") == {"MAXAR-API-KEY": "first"}
    monkeypatch.setenv("K", "rotated")
    assert auth.headers_for("https://api.maxar.com/x") == {"MAXAR-API-KEY": "rotated"}
    monkeypatch.delenv("K")
    with pytest.raises(AuthError, match="environment variable K"):
        auth.headers_for("https://api.maxar.com/x")


def test_bearer_from_a_refreshing_source_and_host_limits():
    tokens = iter(["t1", "t2"])
    auth = RequestAuth(AuthConfig(type="bearer", hosts=["dl.example"]), "p",
                       token=lambda: next(tokens))
    assert auth.headers_for("https://dl.example/a") == {"Authorization": "Bearer t1"}
    assert auth.headers_for("https://dl.example/b") == {"Authorization": "Bearer t2"}
    assert auth.headers_for("https://elsewhere.example/a") == {}


def test_netrc_entry_for_the_request_host(tmp_path):
    netrc = tmp_path / "netrc"
    netrc.write_text("machine download.geoservice.dlr.de login alice password pw1\n")
    netrc.chmod(0o600)
    auth = RequestAuth(AuthConfig(type="netrc", netrc_file=str(netrc)), "enmap")
    header = auth.headers_for("https://download.geoservice.dlr.de/ENMAP/x.TIF")
    assert base64.b64decode(header["Authorization"][6:]) == b"alice:pw1"
    with pytest.raises(AuthError, match="no `machine other.example` entry"):
        auth.headers_for("https://other.example/x")


def test_config_refuses_secrets_and_fills_presets():
    with pytest.raises(ConfigError, match="password"):
        parse_config({"providers": {"enmap": {"auth": {"password": "hunter2"}}}})
    config = parse_config({"providers": {"enmap": {"daily_budget": 2}}})
    enmap = config.provider("enmap")
    assert enmap.url == "https://geoservice.dlr.de/eoc/ogc/stac/v1/"
    assert enmap.collections == ["ENMAP_HSI_L2A"] and enmap.scene_key == "enmap"
    assert enmap.auth.type == "basic" and enmap.auth.username_env == "ENMAP_USERNAME"
    assert enmap.auth.hosts == ["download.geoservice.dlr.de"]  # search is public
    assert enmap.daily_budget == 2
    maxar = parse_config({"providers": {"worldview": {"preset": "maxar"}}}).provider("worldview")
    assert maxar.auth.header == "MAXAR-API-KEY" and maxar.reader == "worldview"
    with pytest.raises(ConfigError, match="unknown_sat.*needs `url`"):
        parse_config({"providers": {"unknown_sat": {"daily_budget": 1}}})
