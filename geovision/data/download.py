"""Fetching published dataset files: verified, resumable, retried, and extracted safely.

A download is written to `<file>.part` and resumed from there with an HTTP Range request
after a dropped connection or an interrupted run; only a file whose size and checksum match
the published ones is renamed into place. Archives are extracted into a temporary folder under
the dataset root and their top-level entries renamed into place, so an interrupted run leaves
nothing half-extracted. A marker file records each verified, extracted resource, so a second
run does no work.
"""

from __future__ import annotations

import email.utils
import hashlib
import itertools
import json
import os
import random
import re
import shutil
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import requests
import urllib3
from tqdm import tqdm

from geovision import errors
from geovision.io.atomic import atomic_file

MARKER = ".geovision_download.json"
DOWNLOADS_DIR = ".downloads"
EXTRACT_PREFIX = ".extract-"
PARTIAL_SUFFIX = ".partial"
ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".zip")
RETRY_STATUSES = {408, 429, 500, 502, 503, 504}
CHUNK_SIZE = 1 << 20
DEFAULT_RETRIES = 5
DEFAULT_BACKOFF_S = 2.0
DEFAULT_TIMEOUT_S = 60.0
MAX_RETRY_AFTER_S = 600.0
# The S3 service of s3:// resources (public datasets live on AWS, the default); set it to
# reach a mirror. Not S3_ENDPOINT_URL: that one names where the artifact root lives.
DATASETS_S3_ENDPOINT_ENV = "GEOVISION_DATASETS_S3_ENDPOINT_URL"
# The first bytes of the formats a Resource may declare as its `kind`.
MAGIC = {
    "tiff": (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"),  # classic and BigTIFF
    "hdf5": (b"\x89HDF\r\n\x1a\n",),
    "zip": (b"PK\x03\x04", b"PK\x05\x06"),
    "xml": (b"<?xml", b"\xef\xbb\xbf<?xml"),
    "jpeg": (b"\xff\xd8\xff",),
    "png": (b"\x89PNG\r\n\x1a\n",),
}


class DownloadError(errors.DownloadError, RuntimeError):
    """A published file could not be fetched, verified or extracted."""


class ChecksumMismatchError(DownloadError, errors.ChecksumError):
    """A downloaded file's size or checksum differs from the published one."""


class HtmlResponseError(DownloadError, errors.AuthError):
    """The server answered with a web page (login, quota or error page) instead of the file."""


class AccessDeniedError(DownloadError, errors.AuthError):
    """The server refused the credentials (HTTP 401/403): retrying cannot help."""


class UnexpectedContentError(DownloadError):
    """The bytes received do not start like the declared format (TIFF, HDF5, zip, ...)."""


class UnsafeArchiveError(DownloadError):
    """An archive member would land outside the destination or is not a plain file or folder."""


class ManualDownloadError(errors.MissingDataError):
    """A dataset that cannot be fetched automatically is not (completely) in place."""


class _Transient(Exception):
    """A failure worth retrying: the next attempt resumes from the bytes already on disk.

    `retry_after` is the wait in seconds the server asked for (Retry-After), if any.
    """

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def kind_of(filename: str) -> str | None:
    """The `kind` (a key of MAGIC) that a file name's suffix promises, or None."""
    suffix = filename.lower().rsplit(".", 1)[-1] if "." in filename else ""
    return {"tif": "tiff", "tiff": "tiff", "he5": "hdf5", "h5": "hdf5", "hdf5": "hdf5",
            "zip": "zip", "xml": "xml", "jpg": "jpeg", "jpeg": "jpeg",
            "png": "png"}.get(suffix)


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


@dataclass(frozen=True)
class Resource:
    """One published file: its URL, the name it is saved under, and its published checksum.

    `sha256` or `md5` (hex) is verified after download; `size` (bytes), when known, is checked
    first. `extract` says whether to unpack it; by default archives (by suffix) are unpacked and
    other files (split lists, metadata) are placed as they are. An archive's top-level entries
    replace same-named entries under the dataset root. An `s3://` URL is fetched through
    S3IO (s5cmd); `public` reads it without credentials (`--no-sign-request`), as public
    buckets such as SpaceNet's allow.
    """

    url: str
    filename: str
    sha256: str | None = None
    md5: str | None = None
    size: int | None = None
    extract: bool | None = None
    into: str | None = None
    kind: str | None = None  # a key of MAGIC: the first bytes must match
    public: bool = False  # an object of a public S3 bucket: no credentials, no signature

    def __post_init__(self) -> None:
        for what, name in (("filename", self.filename), ("into", self.into or "x")):
            if not name or "/" in name or "\\" in name or name in (".", ".."):
                raise ValueError(f"Resource {what} {name!r} must be a plain file name.")
        for algorithm, length in (("sha256", 64), ("md5", 32)):
            value = getattr(self, algorithm)
            if value is not None and not re.fullmatch(f"[0-9a-f]{{{length}}}", value):
                raise ValueError(f"Resource {self.filename}: {algorithm}={value!r} is not "
                                 f"{length} lowercase hex digits.")
        if self.kind is not None and self.kind not in MAGIC:
            raise ValueError(f"Resource {self.filename}: kind {self.kind!r} is not one of "
                             f"{', '.join(MAGIC)}.")

    @property
    def is_archive(self) -> bool:
        if self.extract is not None:
            return self.extract
        return self.filename.lower().endswith(ARCHIVE_SUFFIXES)

    @property
    def checksum(self) -> tuple[str, str] | None:
        """("sha256" | "md5", hex digest) of the published checksum, sha256 preferred."""
        if self.sha256:
            return "sha256", self.sha256
        if self.md5:
            return "md5", self.md5
        return None

    def record(self) -> dict[str, str | None]:
        """What identifies this resource in the marker file."""
        checksum = self.checksum
        return {"url": self.url, "checksum": None if checksum is None else ":".join(checksum)}


# ----- fetching ---------------------------------------------------------------------------


def fetch(resource: Resource, directory: str | os.PathLike, *, retries: int = DEFAULT_RETRIES,
          backoff_s: float = DEFAULT_BACKOFF_S, timeout_s: float = DEFAULT_TIMEOUT_S,
          progress: bool = True, session: requests.Session | None = None,
          sleep: Callable[[float], None] = time.sleep, jitter: float = 0.0,
          check: Callable[[Path], None] | None = None,
          max_retry_after_s: float = MAX_RETRY_AFTER_S) -> Path:
    """Download `resource` to `directory/filename` and verify it; return the verified path.

    An already verified file is kept. Dropped connections, timeouts and HTTP 408/429/5xx are
    retried, each retry resuming where the last stopped, after waiting backoff_s * 2**(n - 1)
    for the n-th failure in a row without new bytes (times a random factor within
    1 +- `jitter`, so that many clients do not retry in step), or as long as the server's
    Retry-After asks (up to `max_retry_after_s`; a longer wait raises DownloadError at once);
    more than `retries` such failures in a row raise DownloadError. 401/403 raise
    AccessDeniedError, other 4xx DownloadError, without retrying. A file that fails
    verification is deleted; if the download had resumed a partial file left by an earlier
    run, it is fetched once more from scratch first. `check(part)` may open the verified file
    (raising DownloadError if it cannot be read) before it is renamed into place.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    dest = directory / resource.filename
    if dest.is_file():
        if verification_problem(dest, resource) is None:
            return dest
        dest.unlink()  # a stale or corrupt copy
    part = dest.with_name(dest.name + ".part")
    if resource.url.startswith("s3://"):
        return _fetch_s3(resource, dest, part, check)
    resumed_earlier_run = part.is_file() and part.stat().st_size > 0
    session = session or requests.Session()
    digest = _PartDigest(resource.checksum[0]) if resource.checksum else None
    failures = 0
    while True:
        before = part.stat().st_size if part.is_file() else 0
        try:
            _stream(resource, part, session, timeout_s, progress, digest)
        except (_Transient, requests.ConnectionError, requests.Timeout,
                urllib3.exceptions.HTTPError) as exc:
            # Count failures in a row without progress: a long download on a flaky link
            # goes on as long as every attempt adds bytes.
            grew = part.is_file() and part.stat().st_size > before
            failures = 1 if grew else failures + 1
            have = part.stat().st_size if part.is_file() else 0
            if failures > retries:
                raise DownloadError(
                    f"Downloading {resource.url} failed {failures} times (last: {exc}). "
                    f"{have} bytes are kept in {part}; run again to resume.") from exc
            wait = getattr(exc, "retry_after", None)
            if wait is not None and wait > max_retry_after_s:
                raise DownloadError(
                    f"{resource.url} asks to retry after {wait:.0f} s ({exc}), longer than "
                    f"{max_retry_after_s:.0f} s; {have} bytes are kept in {part}: run again "
                    "later to resume.") from exc
            if wait is None:
                wait = backoff_s * 2 ** (failures - 1)
                if jitter:
                    wait *= random.uniform(1 - jitter, 1 + jitter)
            sleep(wait)
            continue
        problem = verification_problem(part, resource,
                                       None if digest is None else digest.of(part))
        if problem is None and check is not None:
            try:
                check(part)
            except DownloadError as exc:
                problem = str(exc)
        if problem is None:
            os.replace(part, dest)
            return dest
        part.unlink()
        if resumed_earlier_run:
            resumed_earlier_run = False  # the old partial file may be from another version
            continue
        raise ChecksumMismatchError(
            f"{resource.filename} from {resource.url}: {problem}. The file was deleted. If the "
            "publisher has changed the file, update the dataset's published checksum; otherwise "
            "run again.")


def _fetch_s3(resource: Resource, dest: Path, part: Path,
              check: Callable[[Path], None] | None) -> Path:
    """One S3 object through S3IO: s5cmd downloads its parts in parallel and retries each
    (so no resume here); the whole file is verified before it is renamed into place."""
    from geovision.errors import RemoteError
    from geovision.io.s3 import S3IO

    s3 = S3IO(endpoint_url=os.environ.get(DATASETS_S3_ENDPOINT_ENV) or None,
              no_sign_request=resource.public)
    try:
        s3.download_file(resource.url, part)
    except RemoteError as exc:
        raise DownloadError(f"{resource.filename}: {exc}") from None
    problem = verification_problem(part, resource)
    if problem is None and check is not None:
        try:
            check(part)
        except DownloadError as exc:
            problem = str(exc)
    if problem is not None:
        part.unlink()
        raise ChecksumMismatchError(
            f"{resource.filename} from {resource.url}: {problem}. The file was deleted. If the "
            "publisher has changed the file, update the dataset's published checksum; otherwise "
            "run again.")
    os.replace(part, dest)
    return dest


class _PartDigest:
    """The checksum of a `.part` file, computed as its bytes arrive instead of by reading the
    finished file again. It follows the file: when the file is not the bytes it has seen
    (restarted, deleted), it starts over from the file's content. (Hashing in a second
    thread measured slower on a busy 2-core machine: 0.82 s against 0.65 s for 65 MB.)"""

    def __init__(self, algorithm: str) -> None:
        self.algorithm = algorithm
        self._hash = hashlib.new(algorithm)
        self.size = 0

    def sync(self, part: Path, offset: int) -> None:
        """Before appending at `offset`: make the digest cover exactly part[:offset]."""
        if offset == self.size:
            return
        self._hash, self.size = hashlib.new(self.algorithm), 0
        if offset:
            with open(part, "rb") as f:
                while chunk := f.read(CHUNK_SIZE):
                    self.update(chunk)

    def update(self, chunk: bytes) -> None:
        self._hash.update(chunk)
        self.size += len(chunk)

    def of(self, part: Path) -> str | None:
        """The hex digest if it covers the whole of `part`, else None (read it again)."""
        return self._hash.hexdigest() if part.is_file() and part.stat().st_size == self.size \
            else None


def _stream(resource: Resource, part: Path, session: requests.Session, timeout_s: float,
            progress: bool, digest: _PartDigest | None = None) -> None:
    """One request: append to `part` from its current size (Range), or start it afresh."""
    offset = part.stat().st_size if part.is_file() else 0
    if resource.size is not None and offset > resource.size:
        part.unlink()
        offset = 0
    # Identity encoding: Range offsets count stored bytes, and the checksum is of those bytes.
    headers = {"Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    with session.get(resource.url, headers=headers, stream=True, timeout=timeout_s) as response:
        status = response.status_code
        if status == 416 and offset:
            return  # nothing after `offset`: the partial file is complete (verified next)
        if status in RETRY_STATUSES:
            raise _Transient(f"HTTP {status} {response.reason}",
                             retry_after_seconds(response.headers.get("Retry-After")))
        if status in (401, 403):
            raise AccessDeniedError(
                f"{resource.url} answered HTTP {status} {response.reason}: the credentials "
                "are missing or lack the permission for this file; check the account and the "
                "environment variables that hold its credentials.")
        if status >= 400:
            raise DownloadError(f"{resource.url} answered HTTP {status} {response.reason}; check "
                                "the URL, or fetch the file by hand into the dataset root.")
        if offset and status == 206:
            content_range = response.headers.get("Content-Range", "")
            if not content_range.startswith(f"bytes {offset}-"):
                part.unlink()
                raise _Transient(f"server resumed at {content_range!r}, not byte {offset}")
        elif offset:
            offset = 0  # the server ignored the Range header and sends the whole file
        length = response.headers.get("Content-Length")
        expected = int(length) if length is not None and length.isdigit() else None
        # Raw reads keep the bytes of a read that a dropped connection cuts short, so the
        # next attempt resumes after them.
        chunks = response.raw.stream(CHUNK_SIZE, decode_content=False)
        first = next(chunks, b"")
        if _looks_like_html(response.headers.get("Content-Type", ""), first, resource):
            raise HtmlResponseError(
                f"{resource.url} sent a web page instead of {resource.filename} (often a login, "
                "quota or moved-file page). Open the URL in a browser to see why; if the file "
                "needs registration, download it by hand into the dataset root.")
        if resource.kind is not None and not offset and not first.startswith(
                MAGIC[resource.kind]):
            raise UnexpectedContentError(
                f"{resource.url} sent {first[:16]!r}... where a {resource.kind} file was "
                f"expected ({resource.filename}); the server or the link is wrong.")
        total = None if expected is None else offset + expected
        received = 0
        if digest is not None:
            digest.sync(part, offset)
        with open(part, "ab" if offset else "wb") as out, tqdm(
                total=total or resource.size, initial=offset, unit="B", unit_scale=True,
                unit_divisor=1024, desc=resource.filename, leave=True,
                disable=not progress) as bar:
            for chunk in itertools.chain((first,), chunks):
                out.write(chunk)
                if digest is not None:
                    digest.update(chunk)
                received += len(chunk)
                bar.update(len(chunk))
        if expected is not None and received < expected:
            raise _Transient(f"connection closed after {received} of {expected} bytes")


def _looks_like_html(content_type: str, first: bytes, resource: Resource) -> bool:
    if resource.filename.lower().endswith((".html", ".htm")):
        return False
    if content_type.split(";")[0].strip().lower() in ("text/html", "application/xhtml+xml"):
        return True
    head = first[:512].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html"))


def file_digest(path: str | os.PathLike, algorithm: str) -> str:
    """Hex digest of a file's bytes ("sha256" or "md5")."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, algorithm).hexdigest()


def verification_problem(path: Path, resource: Resource,
                         digest: str | None = None) -> str | None:
    """Why `path` is not the published file (size or checksum), or None if it is.
    `digest`, when given, is the file's checksum already computed (as it was written)."""
    size = path.stat().st_size
    if resource.size is not None and size != resource.size:
        return f"size is {size} bytes, published size is {resource.size}"
    if resource.checksum is not None:
        algorithm, expected = resource.checksum
        actual = digest or file_digest(path, algorithm)
        if actual != expected:
            return f"{algorithm} is {actual}, published {algorithm} is {expected}"
    return None


# ----- extracting -------------------------------------------------------------------------


def extract_archive(archive: str | os.PathLike, dest: str | os.PathLike) -> list[str]:
    """Unpack a tar or zip archive into `dest`; return its top-level entry names, sorted.

    Members with absolute paths or `..`, links that leave the destination, and devices or
    pipes are refused (UnsafeArchiveError) before anything reaches `dest`: the archive is
    unpacked into a temporary folder under `dest` first, and only a complete extraction is
    moved into place, one top-level entry at a time (each replacing a same-named entry).
    """
    archive, dest = Path(archive), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=EXTRACT_PREFIX, suffix=PARTIAL_SUFFIX, dir=dest))
    try:
        if archive.name.lower().endswith(".zip"):
            _extract_zip(archive, tmp)
        else:
            _extract_tar(archive, tmp)
        names = sorted(p.name for p in tmp.iterdir())
        for name in names:
            _replace(tmp / name, dest / name)
        return names
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _replace(new: Path, target: Path) -> None:
    """Move `new` onto `target`; an existing target is removed only after the move."""
    if target.exists() or target.is_symlink():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.replace(target, old)
        os.replace(new, target)
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old)
        else:
            old.unlink()
    else:
        os.replace(new, target)


def _unsafe_name(name: str) -> str | None:
    """Why an archive member name is unsafe, or None."""
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        return "has an absolute path"
    if ".." in PurePosixPath(name.replace("\\", "/")).parts:
        return "has a '..' component"
    return None


def _extract_tar(archive: Path, dest: Path) -> None:
    try:
        tar = tarfile.open(archive, "r:*")
    except tarfile.TarError as exc:
        raise DownloadError(f"{archive} is not a readable tar archive ({exc}); delete it and "
                            "download again.") from exc
    with tar:
        try:
            for member in tar:  # one pass: compressed archives are never re-read
                reason = _unsafe_name(member.name)
                if reason is not None:
                    raise UnsafeArchiveError(f"{archive.name}: member {member.name!r} {reason}; "
                                             "refusing to extract it.")
                # The data filter refuses links leaving `dest` and device or pipe members.
                tar.extract(member, dest, filter="data")
        except UnsafeArchiveError:
            raise  # an OSError too (DownloadError is one): not a corrupt archive
        except tarfile.FilterError as exc:
            raise UnsafeArchiveError(f"{archive.name}: {exc}; refusing to extract it.") from exc
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise DownloadError(f"{archive} could not be extracted ({exc}); it is corrupt or "
                                "truncated: delete it and download again.") from exc


def _extract_zip(archive: Path, dest: Path) -> None:
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DownloadError(f"{archive} is not a readable zip archive ({exc}); delete it and "
                            "download again.") from exc
    with zf:
        members = zf.infolist()
        for info in members:
            reason = _unsafe_name(info.filename)
            if reason is None and (info.external_attr >> 16) & 0o170000 == 0o120000:
                reason = "is a symbolic link"
            if reason is not None:
                raise UnsafeArchiveError(f"{archive.name}: member {info.filename!r} {reason}; "
                                         "refusing to extract it.")
        try:
            for info in members:
                zf.extract(info, dest)
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise DownloadError(f"{archive} could not be extracted ({exc}); it is corrupt or "
                                "truncated: delete it and download again.") from exc


# ----- the whole step ---------------------------------------------------------------------


def download_and_extract(resources: Sequence[Resource], root: str | os.PathLike, *,
                         keep_archives: bool = False, retries: int = DEFAULT_RETRIES,
                         backoff_s: float = DEFAULT_BACKOFF_S,
                         timeout_s: float = DEFAULT_TIMEOUT_S, progress: bool = True,
                         session: requests.Session | None = None,
                         sleep: Callable[[float], None] = time.sleep) -> Path:
    """Fetch, verify and place every resource under `root`; return `root`.

    Archives are unpacked into `root` (deleted afterwards unless `keep_archives`), other files
    are placed as `root/filename`. A resource recorded in the marker as done, with the same URL
    and checksum and its entries still present, is skipped.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for stale in root.glob(f"{EXTRACT_PREFIX}*{PARTIAL_SUFFIX}"):
        shutil.rmtree(stale, ignore_errors=True)  # left by a killed extraction
    marker = read_marker(root)
    downloads = root / DOWNLOADS_DIR
    for resource in resources:
        done = marker.get(resource.filename)
        if done is not None and _is_done(root, done, resource):
            continue
        path = fetch(resource, downloads, retries=retries, backoff_s=backoff_s,
                     timeout_s=timeout_s, progress=progress, session=session, sleep=sleep)
        if resource.is_archive:
            dest = root if resource.into is None else root / resource.into
            entries = extract_archive(path, dest)
            if resource.into is not None:
                entries = [f"{resource.into}/{entry}" for entry in entries]
            if not keep_archives:
                path.unlink()
        else:
            _replace(path, root / resource.filename)
            entries = [resource.filename]
        marker[resource.filename] = {**resource.record(), "entries": entries}
        _write_marker(root, marker)
    if downloads.is_dir() and not any(downloads.iterdir()):
        downloads.rmdir()
    return root


def _is_done(root: Path, done: dict, resource: Resource) -> bool:
    same = {k: done.get(k) for k in ("url", "checksum")} == resource.record()
    return same and all((root / entry).exists() for entry in done.get("entries", []))


def read_marker(root: str | os.PathLike) -> dict[str, dict]:
    """{filename: {url, checksum, entries}} of the resources already in place under `root`."""
    path = Path(root) / MARKER
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        return {}  # a damaged marker only means the work is redone


def _write_marker(root: Path, marker: dict[str, dict]) -> None:
    with atomic_file(root / MARKER) as tmp:
        tmp.write_text(json.dumps(marker, indent=1, sort_keys=True) + "\n")


def require_manual_files(name: str, root: str | os.PathLike,
                         layouts: Sequence[Sequence[str]], instructions: str) -> Path:
    """Return `root` if every path of one of `layouts` (relative to it) exists; otherwise raise
    ManualDownloadError with the dataset's instructions and what is missing."""
    root = Path(root)
    missing = [[rel for rel in layout if not (root / rel).exists()] for layout in layouts]
    if any(not m for m in missing):
        return root
    first = root / missing[0][0]
    raise ManualDownloadError(f"{name} cannot be downloaded automatically. {instructions} "
                              f"Missing: {first}.")
