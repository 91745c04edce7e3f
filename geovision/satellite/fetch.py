"""Fetching a scene's files with the project's downloader, opening them, and the manifest.

Each file goes through `geovision.data.download.fetch`: `.part` resumed with Range (restarted
when the server ignores it), retries with backoff and jitter on 429/5xx/resets honouring
Retry-After, none on 401/403/404, size and sha256 checked when the catalogue publishes them,
magic bytes checked against the suffix (a login page served with 200 where a TIFF was
expected is an auth problem), and the file opened before it is renamed into place. The
manifest is written last, so a scene folder with a manifest is complete.
"""

from __future__ import annotations

import json
import os
import shutil
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import requests

from geovision.data import download
from geovision.errors import AuthError, DataError, DownloadError, MissingDataError
from geovision.io.atomic import atomic_file
from geovision.satellite.scene import SceneAsset

MANIFEST_FILE = "manifest.json"
SATELLITE_RETRIES = 5
SATELLITE_BACKOFF_S = 2.0
SATELLITE_JITTER = 0.5


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file (the downloader's digest; no pandas import on the CLI's path)."""
    return download.file_digest(path, "sha256")


def sha256_of_multihash(value: str | None) -> str | None:
    """The hex sha256 of a STAC `file:checksum` multihash ("1220" + 64 hex digits)."""
    if value and value.startswith("1220") and len(value) == 68:
        return value[4:].lower()
    return None


def open_check(path: Path, kind: str | None) -> None:
    """Open a downloaded file as its kind says; DownloadError names what is wrong."""
    try:
        if kind == "tiff":
            import rasterio

            with rasterio.open(path) as src:
                src.read(1, window=((0, min(1, src.height)), (0, min(1, src.width))))
        elif kind == "hdf5":
            import h5py

            with h5py.File(path, "r") as f:
                list(f.keys())
        elif kind == "zip":
            with zipfile.ZipFile(path) as zf:
                bad = zf.testzip()
                if bad is not None:
                    raise DataError(f"member {bad} is corrupt")
        elif kind == "xml":
            ET.parse(path)
        elif kind in ("png", "jpeg"):
            from PIL import Image

            with Image.open(path) as image:
                image.verify()
    except download.DownloadError:
        raise
    except Exception as exc:  # every reader has its own error types
        raise download.DownloadError(f"{path.name} does not open as {kind} ({exc})") from exc


def fetch_assets(assets: Sequence[SceneAsset], dest: Path, *, provider: str,
                 session: requests.Session, retries: int = SATELLITE_RETRIES,
                 backoff_s: float = SATELLITE_BACKOFF_S, timeout_s: float = 60.0,
                 sleep=None, progress: bool = False) -> list[Path]:
    """Download every asset into `dest` (files already verified are kept); return paths."""
    import time

    paths = []
    for asset in assets:
        kind = download.kind_of(asset.filename)
        resource = download.Resource(asset.href, asset.filename, sha256=asset.sha256,
                                     size=asset.size, extract=False, kind=kind)
        try:
            paths.append(download.fetch(
                resource, dest, retries=retries, backoff_s=backoff_s, timeout_s=timeout_s,
                progress=progress, session=session, sleep=sleep or time.sleep,
                jitter=SATELLITE_JITTER, check=lambda p, kind=kind: open_check(p, kind)))
        except download.HtmlResponseError as exc:
            raise AuthError(
                f"{provider}: {redact(asset.href)} served a web page (a login page) instead of "
                f"{asset.filename}: the account is not signed in or lacks the download "
                "permission (for EnMAP the 'EnMAP Access Service' permission of the DLR EOC "
                "account). Check the credentials' environment variables.") from exc
        except download.AccessDeniedError as exc:
            raise AuthError(f"{provider}: {exc}") from exc
    return paths


def copy_local(source: Path, dest: Path) -> Path:
    """Copy a delivered file into `dest` (kept if already there with the same size)."""
    target = dest / source.name
    if target.is_file() and target.stat().st_size == source.stat().st_size:
        return target
    if not source.is_file():
        raise MissingDataError(f"Delivered file {source} is gone; put it back in the inbox.")
    with atomic_file(target) as tmp:
        shutil.copyfile(source, tmp)
        open_check(tmp, download.kind_of(source.name))
    return target


def redact(href: str) -> str:
    """An href without credentials or query string (tokens stay out of metadata and logs)."""
    parts = urlsplit(href)
    if not parts.scheme:
        return href
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


# ----- manifest --------------------------------------------------------------------------


def file_entries(root: Path, hrefs: dict[str, str],
                 known: dict[str, str] | None = None) -> list[dict]:
    """{path, bytes, sha256[, href]} of every file under `root` but the manifest, sorted.
    `known` holds sha256s already verified (a catalogue's checksums, checked on download),
    which are not computed again."""
    entries = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        if rel == MANIFEST_FILE or path.name.endswith((".part", ".partial")):
            continue
        digest = (known or {}).get(rel) or sha256_of(path)
        entry = {"path": rel, "bytes": path.stat().st_size, "sha256": digest}
        if rel in hrefs:
            entry["href"] = redact(hrefs[rel])
        entries.append(entry)
    return entries


def write_manifest(root: Path, manifest: dict) -> Path:
    with atomic_file(root / MANIFEST_FILE) as tmp:
        tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True, default=str) + "\n")
    return root / MANIFEST_FILE


def read_manifest(root: Path) -> dict | None:
    path = root / MANIFEST_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        return None


def verify_scene(root: Path, *, open_files: bool = True) -> list[str]:
    """What is wrong with a scene folder (empty: nothing): the manifest, every file's size
    and sha256, and (with `open_files`) each file opened by its format."""
    manifest = read_manifest(root)
    if manifest is None:
        return [f"{root}: no readable {MANIFEST_FILE} (the scene is incomplete)"]
    problems = []
    for entry in manifest.get("files", []):
        path = root / entry["path"]
        if not path.is_file():
            problems.append(f"{entry['path']}: missing")
            continue
        if path.stat().st_size != entry["bytes"]:
            problems.append(f"{entry['path']}: {path.stat().st_size} bytes, manifest says "
                            f"{entry['bytes']}")
            continue
        if sha256_of(path) != entry["sha256"]:
            problems.append(f"{entry['path']}: sha256 differs from the manifest")
            continue
        if open_files:
            try:
                open_check(path, download.kind_of(path.name))
            except DownloadError as exc:
                problems.append(f"{entry['path']}: {exc}")
    return problems


def total_bytes(entries: Iterable[dict]) -> int:
    return sum(int(e["bytes"]) for e in entries)


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def file_uri(path: Path) -> str:
    return Path(os.path.abspath(path)).as_uri()
