"""ArtifactStore: an artifact root on S3, worked on through a local cache.

Steps write under a local folder exactly as they would with a local root; a finished artifact
(one file or one folder below that root) is then *published*: its files go up under a new
version prefix, and only then is a small marker object written that names the version and every
file's size and sha256. A reader asks the marker first and downloads only the version it names,
so a sync that dies half-way leaves the previous version what every reader sees.

    s3://bucket/prefix/<relative path>.artifact.json      the marker (written last)
    s3://bucket/prefix/<relative path>@<version>/...      that version's files

The version is a hash of the artifact's content: publishing unchanged content uploads nothing,
and a file whose bytes the store already holds (a run folder's checkpoints, each published
when saved; files unchanged since the artifact's current version) is copied inside S3, not
uploaded again. Every version prefix still holds whole copies of its files, so readers and
pruning never depend on another artifact.
After a new marker is written, versions older than the previous one are removed.

Which root is remote comes from the environment, so that every process of a run (a Dagster
step, a celery worker, each torchrun rank) agrees without being told: `GEOVISION_ARTIFACT_ROOT`
(s3://bucket/prefix; unset or empty: artifacts stay local) and `S3_ENDPOINT_URL` (another S3
service than AWS; MosaicML streaming reads the same variable), credentials from the standard
AWS chain. `artifact_store(home)` is that store (or None), and `publish_artifact` is the hook a
step that writes outside the asset graph's own syncing calls after each save (checkpoints,
ported weights).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from geovision.errors import ConfigError, MissingDataError, RemoteError
from geovision.hashing import hash_manifest, sha256_file
from geovision.io.atomic import atomic_dir, atomic_file
from geovision.io.s3 import S3IO, S3Url

MARKER_SUFFIX = ".artifact.json"
VERSION_SEP = "@"
ARTIFACT_ROOT_ENV = "GEOVISION_ARTIFACT_ROOT"
ENDPOINT_ENV = "S3_ENDPOINT_URL"


@dataclass(frozen=True)
class Published:
    """What a marker says: the artifact's version, kind and files."""

    relative: str
    version: str
    kind: str  # "file" or "dir"
    files: dict[str, dict]
    url: str  # where this version's content lives
    previous: tuple[str, ...] = ()  # older versions still kept, newest first

    @property
    def num_bytes(self) -> int:
        return sum(f["size"] for f in self.files.values())


def _manifest(path: Path) -> dict[str, dict]:
    if path.is_file():
        return {path.name: {"size": path.stat().st_size, "sha256": sha256_file(path)}}
    files = sorted(p for p in path.rglob("*") if p.is_file())
    return {p.relative_to(path).as_posix(): {"size": p.stat().st_size, "sha256": sha256_file(p)}
            for p in files}


class ArtifactStore:
    """Publishes finished artifacts of the local root `cache` to `remote` (s3://bucket/prefix)
    and fetches published ones back into the cache."""

    def __init__(self, remote: str, cache: str | os.PathLike, s3: S3IO,
                 keep_versions: int = 2) -> None:
        self.remote = S3Url.parse(remote.rstrip("/") + "/")
        self.cache = Path(cache).resolve()
        self.s3 = s3
        self.keep_versions = max(keep_versions, 1)

    def __repr__(self) -> str:
        return f"ArtifactStore({str(self.remote)!r}, cache={str(self.cache)!r}, s3={self.s3!r})"

    def relative(self, path: str | os.PathLike) -> str:
        path = Path(path).resolve()
        try:
            rel = path.relative_to(self.cache).as_posix()
        except ValueError:
            raise ConfigError(f"{path} is not under the artifact cache {self.cache}: only "
                              "artifacts of this root can be published") from None
        if rel in ("", "."):
            raise ConfigError("publish an artifact below the root, not the whole root")
        return rel

    def marker_url(self, rel: str) -> str:
        return str(self.remote.join(rel + MARKER_SUFFIX))

    def version_url(self, rel: str, version: str) -> str:
        return str(self.remote.join(f"{rel}{VERSION_SEP}{version}"))

    # ----- reading ------------------------------------------------------------------------
    def published(self, path: str | os.PathLike) -> Published | None:
        """The marker of the artifact at local `path`, or None if it was never published."""
        rel = self.relative(path)
        url = self.marker_url(rel)
        if not self.s3.exists(url):
            return None
        record = json.loads(self.s3.read_bytes(url))
        return Published(relative=rel, version=record["version"], kind=record["kind"],
                         files=record["files"], url=self.version_url(rel, record["version"]),
                         previous=tuple(record.get("previous", ())))

    def fetch(self, path: str | os.PathLike) -> Path:
        """Make the local `path` the published version (downloading only if it differs) and
        return it. Raises MissingDataError if nothing was published there."""
        path = Path(path).resolve()
        marker = self.published(path)
        if marker is None:
            raise MissingDataError(f"{self.remote.join(self.relative(path))} was never "
                                   "published: materialize it first")
        if path.exists() and _manifest(path) == marker.files:
            return path
        if marker.kind == "file":
            (name,) = marker.files
            with atomic_file(path) as tmp:
                self.s3._run("download", marker.url, ["cp", f"{marker.url}/{name}", str(tmp)])
                self._verify(tmp, marker.files[name], f"{marker.url}/{name}")
        else:
            with atomic_dir(path) as tmp:
                if marker.files:
                    self.s3._run("download", marker.url, ["cp", marker.url + "/*", f"{tmp}/"])
                got = _manifest(tmp)
                if got != marker.files:
                    missing = sorted(set(marker.files) - set(got))[:3]
                    raise RemoteError(f"{marker.url} does not hold the files its marker names "
                                      f"(first missing or different: {missing}); publish the "
                                      "artifact again")
        return path

    def fetch_if_published(self, path: str | os.PathLike) -> bool:
        """`fetch` when the artifact was published; leave the local `path` alone (there or
        not) when it never was. Returns whether a published version is now local."""
        if self.published(path) is None:
            return False
        self.fetch(path)
        return True

    @staticmethod
    def _verify(path: Path, expected: dict, url: str) -> None:
        size = path.stat().st_size
        if size != expected["size"] or sha256_file(path) != expected["sha256"]:
            raise RemoteError(f"{url} is not the file its marker names ({size} bytes); publish "
                              "the artifact again")

    # ----- writing ------------------------------------------------------------------------
    def publish(self, path: str | os.PathLike) -> Published:
        """Upload the finished artifact at local `path` as a new version, then switch the
        marker to it; an upload that fails leaves the previous marker (and version) intact."""
        path = Path(path).resolve()
        rel = self.relative(path)
        if not path.exists():
            raise MissingDataError(f"cannot publish {path}: it does not exist")
        files = _manifest(path)
        version = hash_manifest({k: v["sha256"] for k, v in files.items()})[:16]
        kind = "file" if path.is_file() else "dir"
        current = self.published(path)
        target = self.version_url(rel, version)
        if current is not None and current.version == version:
            return current
        # A version prefix left by an interrupted publish is overwritten whole.
        self._put(path, rel, kind, target, files, current)
        history = [current.version, *current.previous] if current else []
        previous = [v for v in dict.fromkeys(history) if v != version][: self.keep_versions - 1]
        record = {"version": version, "kind": kind, "files": files,
                  "published": datetime.now(UTC).isoformat(timespec="seconds"),
                  "previous": previous}
        self.s3.write_bytes(self.marker_url(rel), json.dumps(record, indent=1).encode())
        self._prune(rel, keep={version, *previous})
        return Published(relative=rel, version=version, kind=kind, files=files, url=target,
                         previous=tuple(previous))

    def _put(self, path: Path, rel: str, kind: str, target: str, files: dict[str, dict],
             current: Published | None) -> None:
        """Put the artifact's files under `target`. Those whose content the store already
        holds (in the artifact's current version, in an artifact published inside the folder
        such as a run folder's checkpoints, or, for a file, in one published beside it, as
        Lightning's last.ckpt beside the best one) are copied inside S3; the rest are
        uploaded. So each file's bytes go up once."""
        below = rel if kind == "dir" else rel.rpartition("/")[0]
        held = self._held(below, files) if below else {}
        if current is not None:
            held.update({e["sha256"]: f"{current.url}/{sub}" for sub, e in current.files.items()})
        reused = {sub: held[e["sha256"]] for sub, e in files.items()
                  if e["size"] and e["sha256"] in held}
        if not reused:
            if kind == "file":
                self.s3.upload_file(path, f"{target}/{path.name}")
            else:
                self.s3.upload_dir(path, target)
            return
        try:
            self.s3.copy_many([(src, f"{target}/{sub}") for sub, src in reused.items()])
        except RemoteError:
            reused = {}  # a source version pruned meanwhile: upload those files instead
        local = (lambda sub: path / sub) if kind == "dir" else (lambda sub: path)
        self.s3.copy_many([(str(local(sub)), f"{target}/{sub}") for sub in files
                           if sub not in reused])

    def _held(self, below: str, files: dict[str, dict]) -> dict[str, str]:
        """sha256 -> URL of an object holding that content, among the current versions of the
        artifacts published below `below`; only the markers of artifacts with an object as
        large as one of `files` are read."""
        root = str(self.remote).rstrip("/") + "/"
        listed = self.s3.list(str(self.remote.join(below)) + "/")
        artifacts = {o.url[len(root):-len(MARKER_SUFFIX)] for o in listed
                     if o.url.endswith(MARKER_SUFFIX)}
        sizes = {e["size"] for e in files.values() if e["size"]}
        candidates = set()
        for obj in listed:
            key = obj.url[len(root):]
            if obj.size in sizes:
                candidates.update(key[:i] for i, c in enumerate(key)
                                  if c == VERSION_SEP and key[:i] in artifacts)
        held: dict[str, str] = {}
        for artifact in sorted(candidates):
            try:
                record = json.loads(self.s3.read_bytes(root + artifact + MARKER_SUFFIX))
            except RemoteError:
                continue  # withdrawn since the listing
            base = self.version_url(artifact, record["version"])
            for name, entry in record["files"].items():
                held.setdefault(entry["sha256"], f"{base}/{name}")
        return held

    def _prune(self, rel: str, keep: set[str]) -> None:
        """Remove the versions of `rel` that the marker no longer lists."""
        base = str(self.remote.join(rel)) + VERSION_SEP
        stale = [o.url for o in self.s3.list(base + "*")
                 if o.url[len(base):].split("/", 1)[0] not in keep]
        self.s3.remove_many(stale)

    def unpublish(self, path: str | os.PathLike) -> None:
        """Withdraw an artifact: its marker first (readers stop seeing it), then its versions."""
        rel = self.relative(path)
        self.s3.remove(self.marker_url(rel))
        base = str(self.remote.join(rel)) + VERSION_SEP
        self.s3.remove_many([o.url for o in self.s3.list(base + "*")])

    def remove_local(self, path: str | os.PathLike) -> None:
        """Drop the local copy of an artifact (it can be fetched again)."""
        path = Path(path)
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def remote_root() -> str | None:
    """The remote artifact root `GEOVISION_ARTIFACT_ROOT` names, or None when it is unset."""
    value = os.environ.get(ARTIFACT_ROOT_ENV, "").strip()
    if not value:
        return None
    if not value.startswith("s3://"):
        raise ConfigError(f"{ARTIFACT_ROOT_ENV}={value!r} is not an S3 prefix: write "
                          "s3://bucket/prefix, or leave it empty to keep artifacts local")
    S3Url.parse(value.rstrip("/") + "/")
    return value


def artifact_store(home: str | os.PathLike, s3: S3IO | None = None,
                   remote: str | None = None) -> ArtifactStore | None:
    """The store that publishes the artifacts of the local root `home` to `remote` (default:
    `GEOVISION_ARTIFACT_ROOT`), or None when artifacts stay local. `s3` defaults to S3IO on
    `S3_ENDPOINT_URL` with the standard AWS credential chain."""
    remote = remote or remote_root()
    if remote is None:
        return None
    if s3 is None:
        s3 = S3IO(endpoint_url=os.environ.get(ENDPOINT_ENV) or None)
    return ArtifactStore(remote, home, s3)


def publish_artifact(path: str | os.PathLike, home: str | os.PathLike) -> Published | None:
    """Publish the finished artifact at `path` (under the local root `home`) when the artifact
    root is remote; do nothing (None) when it is local. Call it after each save of something
    other processes or machines must see: a checkpoint, a ported weights folder."""
    store = artifact_store(home)
    return None if store is None else store.publish(path)
