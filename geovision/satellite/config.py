"""`satellite.yaml`: providers, areas of interest, date windows, budgets, credentials.

Secrets never appear in the file: auth entries name the environment variables that hold them
(`extra="forbid"` refuses a `password:` or `token:` key). Presets fill in what is known about
a provider; any field given in the file wins:

    enmap   DLR EOC geoservice STAC, collection ENMAP_HSI_L2A, HTTP Basic from
            ENMAP_USERNAME / ENMAP_PASSWORD (an account with "EnMAP Access Service")
    maxar   Maxar Discovery STAC (wv02, wv03-vnir), header MAXAR-API-KEY from MAXAR_API_KEY
    prisma  an inbox of ASI deliveries (PRS_L2D_*.zip, links from the order e-mails)
    worldview_esa  an inbox of ESA-sponsored Maxar ISD deliveries
"""

from __future__ import annotations

import os
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from geovision.errors import ConfigError, UnknownNameError
from geovision.layout import Layout
from geovision.satellite.auth import AuthConfig
from geovision.satellite.ledger import QuotaLedger

CONFIG_ENV = "GEOVISION_SATELLITE_CONFIG"
DEFAULT_CONFIG = "satellite.yaml"
DEFAULT_BUDGET = 4

PRESETS: dict[str, dict] = {
    "enmap": {"kind": "stac", "url": "https://geoservice.dlr.de/eoc/ogc/stac/v1/",
              "collections": ["ENMAP_HSI_L2A"], "reader": "enmap", "scene_key": "enmap",
              "asset_roles": ["data", "metadata"],
              "auth": {"type": "basic", "username_env": "ENMAP_USERNAME",
                       "password_env": "ENMAP_PASSWORD",
                       "hosts": ["download.geoservice.dlr.de"]}},
    "maxar": {"kind": "stac", "url": "https://api.maxar.com/discovery/v1/",
              "collections": ["wv02", "wv03-vnir"], "reader": "worldview",
              "scene_key": "item_id", "asset_roles": ["data", "metadata"],
              "auth": {"type": "header", "header": "MAXAR-API-KEY",
                       "token_env": "MAXAR_API_KEY"}},
    "prisma": {"kind": "inbox", "reader": "prisma"},
    "worldview_esa": {"kind": "inbox", "reader": "worldview"},
}


class ProviderConfig(BaseModel):
    """One provider. `areas` are bboxes [west, south, east, north] in degrees."""

    model_config = ConfigDict(extra="forbid")

    preset: Literal["enmap", "maxar", "prisma", "worldview_esa"] | None = None
    kind: Literal["stac", "inbox"] = "stac"
    reader: Literal["enmap", "prisma", "worldview"] = "enmap"
    url: str | None = None
    collections: list[str] = []
    filter: str | None = Field(default=None, description="CQL2-text filter")
    asset_roles: list[str] = ["data", "metadata"]
    scene_key: Literal["enmap", "item_id"] = "item_id"
    auth: AuthConfig = AuthConfig()
    daily_budget: int = Field(default=DEFAULT_BUDGET, ge=0)
    areas: list[tuple[float, float, float, float]] = []
    start: date | None = None
    end: date | None = None
    lookback_days: int = Field(default=30, ge=1)
    max_items: int = Field(default=200, ge=1)
    page_size: int = Field(default=50, ge=1)
    timeout_s: float = Field(default=60.0, gt=0)
    retries: int = Field(default=5, ge=0)
    max_attempts: int = Field(default=3, ge=1, description="fetch attempts (days) per scene "
                              "before it is left for a person to look at")

    def window(self, now: datetime) -> tuple[datetime, datetime]:
        """[start, end] of the search: the last `lookback_days`, within start..end."""
        begin = now - timedelta(days=self.lookback_days)
        if self.start is not None:
            begin = max(begin, datetime.combine(self.start, datetime.min.time(), now.tzinfo))
        end = now
        if self.end is not None:
            end = min(end, datetime.combine(self.end, datetime.max.time(), now.tzinfo))
        return begin, end


class SatelliteConfig(BaseModel):
    """The whole file: where the ledger lives and the providers by name."""

    model_config = ConfigDict(extra="forbid")

    ledger: str | None = Field(default=None, description="SQLite path or postgresql:// URL; "
                               "default <home>/satellite/quota.sqlite")
    ledger_env: str | None = Field(default=None, description="environment variable holding "
                                   "the ledger URL (for a Postgres URL with a password)")
    providers: dict[str, ProviderConfig] = {}
    path: str | None = None  # where it was read from (for messages)

    def provider(self, name: str) -> ProviderConfig:
        if name not in self.providers:
            where = self.path or DEFAULT_CONFIG
            raise UnknownNameError(f"Provider {name!r} is not configured in {where}; "
                                   f"configured: {', '.join(self.providers) or 'none'}.")
        return self.providers[name]

    def open_ledger(self, layout: Layout) -> QuotaLedger:
        url = os.environ.get(self.ledger_env, "") if self.ledger_env else ""
        return QuotaLedger(url or self.ledger or layout.quota_ledger())


def config_path(path: str | os.PathLike | None = None) -> Path:
    """`path`, else `$GEOVISION_SATELLITE_CONFIG`, else ./satellite.yaml."""
    return Path(path or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG).expanduser().resolve()


def load_config(path: str | os.PathLike | None = None, *, missing_ok: bool = False
                ) -> SatelliteConfig:
    """Read and validate satellite.yaml, applying presets; an absent file is an empty config
    only with `missing_ok`."""
    file = config_path(path)
    if not file.is_file():
        if missing_ok:
            return SatelliteConfig(path=str(file))
        raise ConfigError(f"No satellite config at {file}; write one (see README, 'Daily "
                          f"satellite downloads') or set {CONFIG_ENV}.")
    try:
        raw = yaml.safe_load(file.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{file} is not valid YAML: {exc}") from exc
    return parse_config(raw, str(file))


def parse_config(raw: dict, where: str = "satellite.yaml") -> SatelliteConfig:
    providers = {}
    for name, entry in (raw.get("providers") or {}).items():
        entry = dict(entry or {})
        preset = entry.get("preset")
        if preset is None and name in PRESETS:
            preset = entry["preset"] = name
        if preset is not None and preset not in PRESETS:
            raise ConfigError(f"{where}: provider {name}: preset {preset!r} is not one of "
                              f"{', '.join(PRESETS)}.")
        if preset is not None:
            base = dict(PRESETS[preset])
            auth = {**base.get("auth", {}), **(entry.get("auth") or {})}
            entry = {**base, **entry}
            if auth:
                entry["auth"] = auth
        providers[name] = entry
    try:
        config = SatelliteConfig(**{**raw, "providers": providers, "path": where})
    except ValidationError as exc:
        raise ConfigError(f"{where} is invalid: {exc}") from exc
    for name, provider in config.providers.items():
        if provider.kind == "stac" and (not provider.url or not provider.collections):
            raise ConfigError(f"{where}: provider {name} (stac) needs `url` and `collections` "
                              "(or a preset: enmap, maxar).")
    return config
