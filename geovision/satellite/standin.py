"""Loopback stand-ins for the providers' hosts: a download server and a STAC API.

`FileServer` serves a folder over HTTP on 127.0.0.1 the way a provider's download host does:
HTTP Basic auth or an API-key header (401 without credentials, 403 for an account without
the permission, or a 302 to an HTML login page like DLR's single sign-on), Range requests
(206/416), and injected
faults - a 429 with Retry-After, a 503, a body cut short, a login page served with 200, a 403,
a reset connection, a server that ignores Range. `StacServer` runs stac-fastapi-static (in
its own environment, `.venv-stac`) over a static catalogue as a subprocess on a free port.
Used by the tests, the benchmark and `make satellite-demo`; nothing here is used in
production.
"""

from __future__ import annotations

import base64
import fnmatch
import os
import re
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

from geovision.errors import ConfigError

LOGIN_PAGE = (b"<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body>"
              b"<form method='post' action='/login'>EOC single sign-on</form></body></html>\n")
FAULTS = ("429", "503", "truncate", "html", "403", "reset", "ignore_range")
STAC_PYTHON_ENV = "GEOVISION_STAC_PYTHON"
CHUNK = 1 << 20


@dataclass
class Fault:
    pattern: str  # fnmatch pattern of the request path
    kind: str
    times: int = 1
    retry_after: str = "1"


@dataclass
class FileServerState:
    root: Path
    users: dict[str, str] = field(default_factory=dict)  # user -> password
    denied: set[str] = field(default_factory=set)  # users without the download permission
    login_redirect: bool = False  # unauthenticated: 302 to an HTML login page
    public: tuple[str, ...] = ()  # fnmatch patterns of paths served without credentials
    tokens: dict[str, str] = field(default_factory=dict)  # API-key header -> accepted value
    faults: list[Fault] = field(default_factory=list)
    log: list[tuple[str, str | None, int]] = field(default_factory=list)  # path, Range, status
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take_fault(self, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.times > 0 and fnmatch.fnmatch(path, fault.pattern):
                    fault.times -= 1
                    return fault
        return None


class _Handler(BaseHTTPRequestHandler):
    server_version = "standin/1"
    protocol_version = "HTTP/1.1"
    state: FileServerState

    def log_message(self, format: str, *args) -> None:  # quiet
        pass

    def _record(self, status: int) -> None:
        with self.state.lock:
            self.state.log.append((self.path, self.headers.get("Range"), status))

    def _simple(self, status: int, body: bytes = b"", headers: dict | None = None,
                content_type: str = "text/plain") -> None:
        self._record(status)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _user(self) -> str | None:
        header = self.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return None
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return None
        return user if self.state.users.get(user) == password else None

    def do_HEAD(self) -> None:  # noqa: N802
        self.do_GET()

    def do_GET(self) -> None:  # noqa: N802
        path = unquote(urlsplit(self.path).path)
        if path == "/login":
            self._simple(200, LOGIN_PAGE, content_type="text/html; charset=utf-8")
            return
        keyed = any(self.headers.get(h) == v for h, v in self.state.tokens.items())
        if self.state.users and not keyed and not any(fnmatch.fnmatch(path, p)
                                                      for p in self.state.public):
            user = self._user()
            if user is None:
                if self.state.login_redirect:
                    self._simple(302, b"", {"Location": "/login"})
                else:
                    self._simple(401, b"sign in\n", {"WWW-Authenticate": 'Basic realm="eoc"'})
                return
            if user in self.state.denied:
                self._simple(403, b"missing permission\n")
                return
        fault = self.state.take_fault(path)
        if fault is not None and fault.kind == "429":
            self._simple(429, b"slow down\n", {"Retry-After": fault.retry_after})
            return
        if fault is not None and fault.kind == "503":
            self._simple(503, b"unavailable\n", {"Retry-After": fault.retry_after})
            return
        if fault is not None and fault.kind == "403":
            self._simple(403, b"forbidden\n")
            return
        if fault is not None and fault.kind == "html":
            self._simple(200, LOGIN_PAGE, content_type="text/html; charset=utf-8")
            return
        if fault is not None and fault.kind == "reset":
            self._record(0)
            self.close_connection = True
            self.connection.close()
            return
        target = (self.state.root / path.lstrip("/")).resolve()
        if not target.is_file() or self.state.root.resolve() not in target.parents:
            self._simple(404, b"not found\n")
            return
        self._send_file(target, fault)

    def _send_file(self, target: Path, fault: Fault | None) -> None:
        size = target.stat().st_size
        start, end, status = 0, size - 1, 200
        wanted = self.headers.get("Range")
        if wanted and not (fault is not None and fault.kind == "ignore_range"):
            match = re.fullmatch(r"bytes=(\d+)-(\d*)", wanted.strip())
            if match:
                start = int(match[1])
                end = min(int(match[2]), size - 1) if match[2] else size - 1
                if start >= size:
                    self._simple(416, b"", {"Content-Range": f"bytes */{size}"})
                    return
                status = 206
        length = end - start + 1
        send = length // 2 if fault is not None and fault.kind == "truncate" else length
        self._record(status)
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(length))
        self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        if self.command == "HEAD":
            return
        with open(target, "rb") as f:
            f.seek(start)
            left = send
            while left > 0:
                chunk = f.read(min(CHUNK, left))
                if not chunk:
                    break
                self.wfile.write(chunk)
                left -= len(chunk)
        if send < length:
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)


class FileServer:
    """A provider's download host on 127.0.0.1 (a free port), serving `root`."""

    def __init__(self, root: Path, *, users: dict[str, str] | None = None,
                 denied: set[str] | None = None, login_redirect: bool = False,
                 public: tuple[str, ...] = (), tokens: dict[str, str] | None = None,
                 port: int = 0) -> None:
        self.state = FileServerState(Path(root), dict(users or {}), set(denied or ()),
                                     login_redirect, tuple(public), dict(tokens or {}))
        handler = type("Handler", (_Handler,), {"state": self.state})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def inject(self, pattern: str, kind: str, times: int = 1, retry_after: str = "1") -> None:
        """Make the next `times` requests whose path matches `pattern` fail with `kind`."""
        if kind not in FAULTS:
            raise ValueError(f"fault {kind!r} is not one of {', '.join(FAULTS)}")
        with self.state.lock:
            self.state.faults.append(Fault(pattern, kind, times, retry_after))

    def clear_faults(self) -> None:
        with self.state.lock:
            self.state.faults.clear()

    def __enter__(self) -> FileServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


def stac_python() -> Path | None:
    """The interpreter of the STAC stand-in's environment: $GEOVISION_STAC_PYTHON, else
    `.venv-stac/bin/python` in the project folder; None if neither exists."""
    env = os.environ.get(STAC_PYTHON_ENV)
    candidates = [Path(env)] if env else []
    candidates.append(Path(__file__).resolve().parents[2] / ".venv-stac" / "bin" / "python")
    return next((c for c in candidates if c.is_file()), None)


class StacServer:
    """stac-fastapi-static over `catalog` (a catalog.json) as a subprocess on a free port."""

    def __init__(self, catalog: Path, python: Path | None = None,
                 startup_timeout_s: float = 60.0) -> None:
        python = python or stac_python()
        if python is None:
            raise ConfigError("The STAC stand-in needs its own environment: run `make "
                              f".venv-stac` (or set {STAC_PYTHON_ENV} to its python).")
        self.catalog = Path(catalog).resolve()
        self.python = python
        self.startup_timeout_s = startup_timeout_s
        self.process: subprocess.Popen | None = None
        self.port: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self) -> StacServer:
        script = Path(__file__).with_name("stac_serve.py")
        self._log = tempfile.TemporaryFile(mode="w+")  # a pipe nobody reads could fill up
        self.process = subprocess.Popen(
            [str(self.python), str(script), "--catalog", str(self.catalog)],
            stdout=subprocess.PIPE, stderr=self._log, text=True,
            env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
        deadline = time.monotonic() + self.startup_timeout_s
        line = ""
        while time.monotonic() < deadline:
            line = self.process.stdout.readline() if self.process.stdout else ""
            if line.startswith("PORT "):
                self.port = int(line.split()[1])
                break
            if self.process.poll() is not None:
                break
        if self.port is None:
            self._log.seek(0)
            err = self._log.read()
            self.stop()
            raise ConfigError(f"The STAC stand-in did not start ({line.strip() or 'no port'})"
                              f": {err[-2000:]}")
        self._wait_ready(deadline)
        return self

    def _wait_ready(self, deadline: float) -> None:
        import requests

        while time.monotonic() < deadline:
            try:
                if requests.get(self.url, timeout=2).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.stop()
        raise ConfigError(f"The STAC stand-in at {self.url} did not answer.")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        if getattr(self, "_log", None) is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> StacServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

