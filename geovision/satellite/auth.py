"""Credentials for providers: read from the environment (or ~/.netrc) at each request.

Secrets are never stored in configs, metadata or logs: a config names the environment
variables that hold them, and `RequestAuth` looks them up when each request is sent, so a
token rotated by the deployment (or a callable that refreshes one) takes effect without a
restart. The same object signs STAC searches (pystac-client's `request_modifier`) and
downloads (a requests session's `auth`).
"""

from __future__ import annotations

import base64
import netrc
import os
from collections.abc import Callable
from typing import Literal
from urllib.parse import urlsplit

import requests
from pydantic import BaseModel, ConfigDict

from geovision.errors import AuthError, ConfigError

AuthKind = Literal["none", "basic", "netrc", "bearer", "header"]


class AuthConfig(BaseModel):
    """How to sign requests. Values name environment variables, never hold secrets.

    - none: anonymous.
    - basic: HTTP Basic from `username_env` / `password_env`.
    - netrc: HTTP Basic from the `machine` entry of `netrc_file` (default ~/.netrc) for each
      request's host.
    - bearer: `Authorization: Bearer <$token_env>`.
    - header: `<header>: <$token_env>` (an API key header such as MAXAR-API-KEY).
    `hosts` limits the credentials to those host names (empty: every host), so a search
    token is not sent to an unrelated download host.
    """

    model_config = ConfigDict(extra="forbid")

    type: AuthKind = "none"
    username_env: str | None = None
    password_env: str | None = None
    token_env: str | None = None
    header: str = "Authorization"
    netrc_file: str | None = None
    hosts: list[str] = []


def _env(name: str | None, what: str, provider: str) -> str:
    if not name:
        raise ConfigError(f"{provider}: auth needs `{what}` (the name of an environment "
                          "variable) in satellite.yaml.")
    value = os.environ.get(name)
    if not value:
        raise AuthError(f"{provider}: environment variable {name} ({what[:-4]}) is not set; "
                        f"export it with the account's {what[:-4]} before running.")
    return value


class RequestAuth(requests.auth.AuthBase):
    """Adds the configured credentials to each request as it is sent."""

    def __init__(self, config: AuthConfig, provider: str,
                 token: Callable[[], str] | None = None) -> None:
        self.config = config
        self.provider = provider
        self.token = token  # a refreshing token source, instead of token_env

    def headers_for(self, url: str) -> dict[str, str]:
        """The auth headers for a request to `url` (empty for none or another host)."""
        config = self.config
        host = urlsplit(url).hostname or ""
        if config.type == "none" or (config.hosts and host not in config.hosts):
            return {}
        if config.type == "basic":
            user = _env(config.username_env, "username_env", self.provider)
            password = _env(config.password_env, "password_env", self.provider)
            return {"Authorization": _basic(user, password)}
        if config.type == "netrc":
            path = config.netrc_file or os.path.expanduser("~/.netrc")
            try:
                entry = netrc.netrc(path).authenticators(host)
            except (OSError, netrc.NetrcParseError) as exc:
                raise AuthError(f"{self.provider}: cannot read {path} ({exc}); add a "
                                f"`machine {host} login ... password ...` entry.") from exc
            if entry is None:
                raise AuthError(f"{self.provider}: {path} has no `machine {host}` entry; add "
                                "one with the account's login and password.")
            return {"Authorization": _basic(entry[0], entry[2] or "")}
        value = self.token() if self.token else _env(config.token_env, "token_env",
                                                     self.provider)
        if config.type == "bearer":
            return {"Authorization": f"Bearer {value}"}
        return {config.header: value}

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers.update(self.headers_for(request.url or ""))
        return request

    def modify(self, request: requests.Request) -> None:
        """pystac-client's `request_modifier`: sign a search request before it is sent."""
        request.headers.update(self.headers_for(request.url or ""))

    def session(self) -> requests.Session:
        """A session that signs every request (downloads); its own auth wins over ~/.netrc."""
        session = requests.Session()
        session.auth = self
        return session


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
