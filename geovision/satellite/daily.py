"""The daily cycle: what a sensor tick requests, and what one scene's run does.

`plan_tick` searches (cheap), remembers what it found, and picks at most the day's remaining
budget: scenes already charged but unfinished first (they cost nothing more), then new ones,
oldest first, skipping anything done, in flight, or already tried today. `download_scene`
reserves in the ledger, fetches, reads to the analysis-ready form and writes the manifest
last. Both take `now`, so a test can run sixty days in seconds.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from geovision.data.download import extract_archive
from geovision.errors import (
    AuthError,
    ChecksumError,
    DataError,
    QuotaError,
)
from geovision.layout import Layout
from geovision.satellite import fetch as fetching
from geovision.satellite.config import ProviderConfig, SatelliteConfig
from geovision.satellite.fetch import sha256_of
from geovision.satellite.ledger import QuotaLedger, next_window, utc_day
from geovision.satellite.providers import InboxProvider, StacProvider
from geovision.satellite.readers import QUICKLOOK_FILE, SCENE_FILE, read_product, write_scene
from geovision.satellite.scene import Provider, SceneRef, split_partition_key

SOURCE_DIR = "source"
PRODUCT_DIR = "product"


def make_provider(name: str, config: ProviderConfig, layout: Layout, *,
                  sleep: Callable[[float], None] | None = None) -> Provider:
    if config.kind == "inbox":
        return InboxProvider(name, layout.inbox(name), config.reader, auth=config.auth,
                             retries=config.retries, timeout_s=config.timeout_s, sleep=sleep)
    return StacProvider(name, config.url or "", config.collections, filter=config.filter,
                        asset_roles=config.asset_roles, auth=config.auth,
                        scene_key=config.scene_key, max_items=config.max_items,
                        page_size=config.page_size, timeout_s=config.timeout_s,
                        retries=config.retries, sleep=sleep)


def search_scenes(config: SatelliteConfig, name: str, layout: Layout, ledger: QuotaLedger, *,
                  now: datetime | None = None, start: datetime | None = None,
                  end: datetime | None = None, sleep=None) -> list[SceneRef]:
    """Search every area of `name` over its window (or start..end) and record the finds."""
    provider_config = config.provider(name)
    now = now or datetime.now(UTC)
    begin, finish = provider_config.window(now)
    provider = make_provider(name, provider_config, layout, sleep=sleep)
    found: dict[str, SceneRef] = {}
    for area in provider_config.areas or [None]:
        for scene in provider.search(area, start or begin, end or finish):
            if scene.scene_key not in found or scene.product_id > found[scene.scene_key].product_id:
                found[scene.scene_key] = scene
    scenes = sorted(found.values(), key=lambda s: (s.acquired, s.scene_key))
    ledger.record_found(scenes, now=now)
    return scenes


@dataclass(frozen=True)
class TickPlan:
    """What one sensor tick asks for, or why nothing."""

    provider: str
    day: str
    used: int
    budget: int
    requests: tuple[SceneRef, ...]
    skip_reason: str | None
    found: int


def plan_tick(config: SatelliteConfig, name: str, layout: Layout, ledger: QuotaLedger, *,
              now: datetime | None = None, in_flight: Collection[str] = (),
              sleep=None) -> TickPlan:
    """Scenes to request now for provider `name`: at most the budget left today.

    `in_flight` are scene keys of runs queued or running (not yet in the ledger): they count
    against the budget already.
    """
    now = now or datetime.now(UTC)
    day = utc_day(now)
    provider_config = config.provider(name)
    budget = provider_config.daily_budget
    rows = {r.scene_key: r for r in ledger.rows(name)}
    used = ledger.used(name, day)
    waiting = [k for k in in_flight if k not in rows or rows[k].state == "released"]
    remaining = budget - used - len(waiting)
    if remaining <= 0:
        reason = f"{name}: {used}/{budget} used for {day}; next window {next_window(day)[11:]}"
        if waiting:
            reason += f" ({len(waiting)} more requested, waiting to run)"
        return TickPlan(name, day, used, budget, (), reason, 0)
    found = search_scenes(config, name, layout, ledger, now=now, sleep=sleep)
    free, new = [], []
    for scene in ledger.pending(name):
        row = rows.get(scene.scene_key)
        if scene.scene_key in in_flight:
            continue
        if row is None:
            new.append(scene)
            continue
        tried_today = utc_day(datetime.fromisoformat(row.finished_at or row.reserved_at)) == day
        if tried_today or row.attempts >= provider_config.max_attempts:
            continue  # tomorrow, or a person looks at it (`geovision satellite quota`)
        (free if row.state in ("reserved", "failed-consumed") else new).append(scene)
    picked = tuple(free + new[:remaining])
    if picked:
        return TickPlan(name, day, used, budget, picked, None, len(found))
    if not new and not free:
        reason = (f"{name}: no new scenes ({len(found)} found, all fetched or tried today); "
                  f"{used}/{budget} used for {day}")
    else:
        reason = f"{name}: {used}/{budget} used for {day}; next window {next_window(day)[11:]}"
    return TickPlan(name, day, used, budget, (), reason, len(found))


@dataclass(frozen=True)
class SceneResult:
    """A fetched, analysis-ready scene: what the asset reports."""

    partition_key: str
    path: Path
    scene: Path
    quicklook: Path
    manifest: Path
    manifest_sha256: str
    bytes: int
    band_names: tuple[str, ...]
    wavelengths_nm: tuple[float | None, ...]
    footprint: dict | None
    cloud_cover: float | None
    acquired: str
    product_id: str
    reused: bool  # True when the scene was already complete (nothing fetched)


def download_scene(config: SatelliteConfig, partition_key: str, layout: Layout,
                   ledger: QuotaLedger, *, now: datetime | None = None,
                   run_id: str | None = None, sleep=None) -> SceneResult:
    """Reserve, fetch, read to the analysis-ready form and write the manifest, for one scene.

    A scene already complete is returned as it is. QuotaError when today's budget is used;
    AuthError for refused credentials (both: do not retry today). A corrupt delivery stays
    charged (failed-consumed); other failures give the unit back (released).
    """
    name, key = split_partition_key(partition_key)
    provider_config = config.provider(name)
    scene = ledger.found(name, key)
    dest = layout.scene(name, key)
    if ledger.state(name, key) == "done" and not fetching.verify_scene(dest, open_files=False):
        return _result(scene, dest, reused=True)
    reservation = ledger.reserve(scene, provider_config.daily_budget, now=now, run_id=run_id)
    try:
        _build(scene, provider_config, dest, layout, sleep)
    except (AuthError, QuotaError) as exc:
        ledger.fail(name, key, str(exc), consumed=False, now=now)
        raise
    except (ChecksumError, DataError) as exc:
        ledger.fail(name, key, str(exc), consumed=True, now=now)
        raise
    except BaseException as exc:
        ledger.fail(name, key, f"{type(exc).__name__}: {exc}", consumed=False, now=now)
        raise
    result = _result(scene, dest, reused=reservation.already_done)
    ledger.finish(name, key, nbytes=result.bytes, product_id=scene.product_id, now=now)
    return result


def _build(scene: SceneRef, config: ProviderConfig, dest: Path, layout: Layout,
           sleep) -> None:
    provider = make_provider(scene.provider, config, layout, sleep=sleep)
    if fetching.read_manifest(dest) is not None and not fetching.verify_scene(dest):
        return
    (dest / fetching.MANIFEST_FILE).unlink(missing_ok=True)
    source = dest / SOURCE_DIR
    files = provider.fetch(scene, source)
    product_dir = source
    archives = [p for p in files if p.suffix.lower() == ".zip"]
    if archives:
        product_dir = dest / PRODUCT_DIR
        shutil.rmtree(product_dir, ignore_errors=True)
        for archive in archives:
            extract_archive(archive, product_dir)
    product = read_product(config.reader, product_dir)
    written = write_scene(product, dest, provider=scene.provider, scene_key=scene.scene_key)
    footprint = scene.footprint or _footprint(written["scene"])
    hrefs = {f"{SOURCE_DIR}/{a.filename}": a.href for a in scene.assets}
    manifest = {
        "provider": scene.provider, "scene_key": scene.scene_key,
        "product_id": scene.product_id, "acquired": product.acquired.isoformat(),
        "footprint": footprint, "cloud_cover": scene.cloud_cover
        if scene.cloud_cover is not None else product.metadata.get("cloudCover"),
        "quantity": product.quantity,
        "bands": [{"name": b.name, "wavelength_nm": b.wavelength_nm, "fwhm_nm": b.fwhm_nm}
                  for b in product.bands],
        "files": fetching.file_entries(dest, hrefs, {f"{SOURCE_DIR}/{a.filename}": a.sha256
                                                     for a in scene.assets if a.sha256}),
        "provider_metadata": {**scene.extra, **product.metadata},
        "created": fetching.now_iso(),
    }
    fetching.write_manifest(dest, manifest)


def _footprint(scene_tif: Path) -> dict:
    """The scene's bounds as a lon/lat GeoJSON polygon."""
    import rasterio
    from rasterio.warp import transform_geom

    with rasterio.open(scene_tif) as src:
        west, south, east, north = src.bounds
        geom = {"type": "Polygon", "coordinates": [[[west, south], [east, south],
                                                    [east, north], [west, north],
                                                    [west, south]]]}
        return transform_geom(src.crs, "EPSG:4326", geom)


def _result(scene: SceneRef, dest: Path, *, reused: bool) -> SceneResult:
    manifest = fetching.read_manifest(dest) or {}
    bands = manifest.get("bands", [])
    return SceneResult(
        partition_key=scene.partition_key, path=dest, scene=dest / SCENE_FILE,
        quicklook=dest / QUICKLOOK_FILE, manifest=dest / fetching.MANIFEST_FILE,
        manifest_sha256=sha256_of(dest / fetching.MANIFEST_FILE),
        bytes=fetching.total_bytes(manifest.get("files", [])),
        band_names=tuple(b["name"] for b in bands),
        wavelengths_nm=tuple(b["wavelength_nm"] for b in bands),
        footprint=manifest.get("footprint"), cloud_cover=manifest.get("cloud_cover"),
        acquired=manifest.get("acquired", scene.acquired.isoformat()),
        product_id=manifest.get("product_id", scene.product_id), reused=reused)
