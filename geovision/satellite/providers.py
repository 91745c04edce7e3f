"""Scene providers: STAC catalogues (EnMAP, Maxar Discovery) and delivery inboxes (PRISMA,
ESA-sponsored WorldView).

`StacProvider` searches with pystac-client (paged, capped, signed per request) and fetches the
assets of the roles it is configured for. `InboxProvider` reads what was delivered: zips
dropped into `<home>/satellite/inbox/<provider>/` and the delivery URLs listed one a line in
its `links.txt`; product names give the scene keys (PRISMA start_stop, WorldView CatId from the
.IMD inside the zip). Neither downloads anything during `search`.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit

import requests

from geovision.errors import AuthError, ConfigError, DataError, DownloadError
from geovision.satellite import fetch as fetching
from geovision.satellite.auth import AuthConfig, RequestAuth
from geovision.satellite.readers import parse_imd
from geovision.satellite.scene import (
    ORDER_ITEM,
    WORLDVIEW_NAME,
    SceneAsset,
    SceneRef,
    enmap_key,
    newest_per_key,
    prisma_key,
    prisma_time,
    utc,
)

LINKS_FILE = "links.txt"


def _enmap_scene_key(item: dict) -> str:
    try:
        return enmap_key(item["id"])[0]
    except DataError:
        props = item.get("properties", {})
        if "enmap:datatakeID" in props and "enmap:imageID" in props:
            return f"DT{int(props['enmap:datatakeID']):010d}_{int(props['enmap:imageID']):03d}"
        raise


KEY_FUNCTIONS: dict[str, Callable[[dict], str]] = {
    "enmap": _enmap_scene_key,  # datatake + tile: the same across reprocessed versions
    "item_id": lambda item: item["id"],  # Maxar Discovery: the item id is the catalogue id
}


class StacProvider:
    """Scenes from a STAC API: collections, an optional CQL2 filter, the asset roles to fetch."""

    def __init__(self, name: str, url: str, collections: Sequence[str], *,
                 filter: str | None = None, filter_lang: str = "cql2-text",
                 asset_roles: Sequence[str] = ("data", "metadata"),
                 auth: AuthConfig | None = None, scene_key: str = "item_id",
                 max_items: int = 200, page_size: int = 50, timeout_s: float = 60.0,
                 retries: int = fetching.SATELLITE_RETRIES,
                 backoff_s: float = fetching.SATELLITE_BACKOFF_S, sleep=None) -> None:
        if scene_key not in KEY_FUNCTIONS:
            raise ConfigError(f"{name}: scene_key {scene_key!r} is not one of "
                              f"{', '.join(KEY_FUNCTIONS)}.")
        self.name = name
        self.url = url
        self.collections = list(collections)
        self.filter = filter
        self.filter_lang = filter_lang
        self.asset_roles = tuple(asset_roles)
        self.auth = RequestAuth(auth or AuthConfig(), name)
        self.key_of = KEY_FUNCTIONS[scene_key]
        self.max_items = max_items
        self.page_size = page_size
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.sleep = sleep

    def search(self, aoi: Sequence[float] | None, start: datetime,
               end: datetime) -> list[SceneRef]:
        """Items over `aoi` (bbox) acquired in [start, end], at most `max_items`, one per
        scene key (the newest processing). Stops early on an empty page or a page that
        brings nothing new (servers that keep returning `next`)."""
        from pystac_client import Client
        from pystac_client.exceptions import APIError

        self.auth.headers_for(self.url)  # missing credentials: AuthError here, not wrapped
        try:
            client = Client.open(self.url, request_modifier=self.auth.modify,
                                 timeout=self.timeout_s)
            search = client.search(collections=self.collections,
                                   bbox=list(aoi) if aoi else None,
                                   datetime=[utc(start), utc(end)], filter=self.filter,
                                   filter_lang=self.filter_lang if self.filter else None,
                                   max_items=self.max_items, limit=self.page_size)
            seen: set[str] = set()
            scenes = []
            for page in search.pages_as_dicts():
                features = page.get("features", [])
                new = [f for f in features if f["id"] not in seen]
                if not new:
                    break
                for feature in new:
                    seen.add(feature["id"])
                    scenes.append(self.scene_of(feature))
                if len(seen) >= self.max_items:
                    break
        except APIError as exc:
            text = str(exc)
            if "401" in text or "403" in text:
                raise AuthError(f"{self.name}: the STAC API at {self.url} refused the "
                                f"credentials ({text[:200]}).") from exc
            raise DownloadError(f"{self.name}: searching {self.url} failed ({text[:300]}); "
                                "the next tick tries again.") from exc
        except requests.RequestException as exc:
            raise DownloadError(f"{self.name}: cannot reach the STAC API at {self.url} "
                                f"({exc}).") from exc
        return newest_per_key(scenes)

    def scene_of(self, item: dict) -> SceneRef:
        """A SceneRef from a STAC item (as a dict)."""
        props = item.get("properties", {})
        when = props.get("datetime") or props.get("start_datetime")
        assets = []
        for key, asset in sorted(item.get("assets", {}).items()):
            roles = tuple(asset.get("roles", ()))
            if self.asset_roles and not set(roles) & set(self.asset_roles):
                continue
            assets.append(SceneAsset(key, asset["href"], roles, asset.get("type"),
                                     asset.get("file:size"),
                                     fetching.sha256_of_multihash(asset.get("file:checksum"))))
        if not assets:
            raise DataError(f"{self.name}: item {item['id']} has no asset with a role in "
                            f"{self.asset_roles}; set asset_roles in satellite.yaml.")
        return SceneRef(self.name, self.key_of(item), item["id"],
                        datetime.fromisoformat(when.replace("Z", "+00:00")),
                        item.get("geometry"), props.get("eo:cloud_cover"), tuple(assets),
                        {"collection": item.get("collection"), **props})

    def fetch(self, scene: SceneRef, dest: Path) -> list[Path]:
        return fetching.fetch_assets(scene.assets, dest, provider=self.name,
                                     session=self.auth.session(), retries=self.retries,
                                     backoff_s=self.backoff_s, timeout_s=self.timeout_s,
                                     sleep=self.sleep)


class InboxProvider:
    """Scenes delivered as zips into `folder`, or as delivery URLs in `folder/links.txt`.

    `reader` ("prisma" or "worldview") says how names are parsed. A line of links.txt is
    `URL [key=<scene key>] [acquired=<ISO date>]`; `#` starts a comment. The date window
    filters by acquisition time; deliveries have no footprint before they are read, so the
    areas of interest do not filter them (they were ordered for those areas).
    """

    def __init__(self, name: str, folder: Path, reader: str, *, auth: AuthConfig | None = None,
                 retries: int = fetching.SATELLITE_RETRIES,
                 backoff_s: float = fetching.SATELLITE_BACKOFF_S, timeout_s: float = 60.0,
                 sleep=None) -> None:
        if reader not in ("prisma", "worldview"):
            raise ConfigError(f"{name}: an inbox reads 'prisma' or 'worldview' deliveries, "
                              f"not {reader!r}.")
        self.name = name
        self.folder = Path(folder)
        self.reader = reader
        self.auth = RequestAuth(auth or AuthConfig(), name)
        self.retries = retries
        self.backoff_s = backoff_s
        self.timeout_s = timeout_s
        self.sleep = sleep

    def search(self, aoi: Sequence[float] | None, start: datetime,
               end: datetime) -> list[SceneRef]:
        self.folder.mkdir(parents=True, exist_ok=True)
        scenes = [self.scene_of_file(p) for p in sorted(self.folder.glob("*.zip"))]
        scenes += self.links()
        start, end = utc(start), utc(end)
        return newest_per_key([s for s in scenes if start <= s.acquired <= end])

    def scene_of_file(self, path: Path) -> SceneRef:
        asset = SceneAsset("delivery", fetching.file_uri(path), ("data",), "application/zip",
                           path.stat().st_size)
        if self.reader == "prisma":
            key, fields = prisma_key(path.name)
            return SceneRef(self.name, key, path.stem, prisma_time(fields["start"]), None,
                            None, (asset,), {"level": fields["level"], "source": "inbox"})
        try:
            with zipfile.ZipFile(path) as zf:
                imds = sorted(n for n in zf.namelist() if n.upper().endswith(".IMD"))
                if not imds:
                    raise DataError(f"{path} holds no .IMD: not a Maxar ISD delivery.")
                imd = parse_imd(zf.read(imds[0]).decode(errors="replace"))
        except zipfile.BadZipFile as exc:
            raise DataError(f"{path} is not a readable zip ({exc}); replace the delivery.") \
                from exc
        image = imd.get("IMAGE_1", {})
        catid = image.get("CatId") or imd.get("productCatalogId")
        if not catid:
            raise DataError(f"{path}: {imds[0]} has no CatId.")
        when = image.get("firstLineTime", "").rstrip("Z")
        acquired = (datetime.fromisoformat(when).replace(tzinfo=UTC) if when
                    else datetime.fromtimestamp(path.stat().st_mtime, UTC))
        cloud = image.get("cloudCover")
        return SceneRef(self.name, catid, path.stem, acquired, None,
                        float(cloud) if cloud else None, (asset,),
                        {"satId": image.get("satId"), "source": "inbox"})

    def links(self) -> list[SceneRef]:
        path = self.folder / LINKS_FILE
        if not path.is_file():
            return []
        added = datetime.fromtimestamp(path.stat().st_mtime, UTC)
        scenes = []
        for number, raw in enumerate(path.read_text().splitlines(), 1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            url, *options = line.split()
            opts = dict(o.split("=", 1) for o in options if "=" in o)
            name = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
            try:
                scenes.append(self._scene_of_link(url, name, opts, added))
            except DataError as exc:
                raise DataError(f"{path}, line {number}: {exc}") from exc
        return scenes

    def _scene_of_link(self, url: str, name: str, opts: dict, added: datetime) -> SceneRef:
        asset = SceneAsset("delivery", url, ("data",), "application/zip")
        if self.reader == "prisma" and "key" not in opts:
            key, fields = prisma_key(name)
            return SceneRef(self.name, key, Path(name).stem, prisma_time(fields["start"]),
                            None, None, (asset,), {"level": fields["level"], "source": "link"})
        key = opts.get("key")
        if key is None:
            match = WORLDVIEW_NAME.search(name) or ORDER_ITEM.search(name)
            if match is None:
                raise DataError(f"cannot tell the scene from {name!r}; add key=<CatId>.")
            key = f"{match['order']}_{match['item']}"
        acquired = (datetime.fromisoformat(opts["acquired"]) if "acquired" in opts
                    else added)
        return SceneRef(self.name, re.sub(r"[^A-Za-z0-9_.-]", "_", key), Path(name).stem,
                        utc(acquired), None, None, (asset,), {"source": "link"})

    def fetch(self, scene: SceneRef, dest: Path) -> list[Path]:
        local = [a for a in scene.assets if a.href.startswith("file:")]
        remote = [a for a in scene.assets if not a.href.startswith("file:")]
        dest.mkdir(parents=True, exist_ok=True)
        paths = [fetching.copy_local(Path(unquote(urlsplit(a.href).path)), dest)
                 for a in local]
        paths += fetching.fetch_assets(remote, dest, provider=self.name,
                                       session=self.auth.session(), retries=self.retries,
                                       backoff_s=self.backoff_s, timeout_s=self.timeout_s,
                                       sleep=self.sleep)
        return paths
