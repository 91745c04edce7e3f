"""Real servers on loopback for the tests: moto's S3, an OpenSSH sshd, dagster-webserver, and
Debian's chromium to look at the web UI as a user does.

Each starts on a free port, belongs to the test (or session) that asked for it and stops with
it. Missing software skips the test, or fails it under GEOVISION_REQUIRE_SERVICES=1 (as in CI).
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

SSHD = "/usr/sbin/sshd"
CHROMIUM = "/usr/bin/chromium"
WEBSERVER = Path(sys.executable).parent / "dagster-webserver"


def missing(what: str) -> None:
    """Skip (or fail under GEOVISION_REQUIRE_SERVICES=1) because `what` is not available."""
    if os.environ.get("GEOVISION_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{what} (GEOVISION_REQUIRE_SERVICES=1 requires it)")
    pytest.skip(what)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class S3Request:
    """One request the S3 server received: what a client sent over the wire."""

    method: str
    bucket: str
    key: str
    body_bytes: int  # the request body's length: bytes uploaded
    body_sha256: str  # of the body as sent ("" when empty)
    copy_source: str  # x-amz-copy-source of a copy inside S3, else ""


@dataclass
class S3Server:
    endpoint_url: str
    access_key: str
    secret_key: str
    log: list[S3Request] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        return {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key,
                "AWS_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}

    def requests(self, bucket: str) -> list[S3Request]:
        """The requests made so far to objects of `bucket` (path-style addressing, as s5cmd
        and boto3 use against an endpoint URL)."""
        return [r for r in list(self.log) if r.bucket == bucket]


def _recording(app, log: list[S3Request]):
    """A WSGI wrapper noting each request's method, object, body (length and sha256) and copy
    source before moto handles it."""
    import hashlib
    import io
    from urllib.parse import unquote

    def recorded(environ, start_response):
        bucket, _, key = unquote(environ.get("PATH_INFO", "")).lstrip("/").partition("/")
        if environ.get("wsgi.input_terminated"):  # chunked: read to the end
            body = environ["wsgi.input"].read()
        else:
            body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(body)
        log.append(S3Request(method=environ["REQUEST_METHOD"], bucket=bucket, key=key,
                             body_bytes=len(body),
                             body_sha256=hashlib.sha256(body).hexdigest() if body else "",
                             copy_source=unquote(environ.get("HTTP_X_AMZ_COPY_SOURCE", ""))))
        return app(environ, start_response)

    return recorded


def start_moto():
    """moto's S3 server on a free loopback port; returns (server, S3Server) with fresh
    random credentials (moto accepts any). The S3Server logs every request it receives."""
    try:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from moto.server import ThreadedMotoServer
        from werkzeug.serving import make_server
    except ImportError:
        missing("moto[server] is not installed: pip install -e '.[dev]'")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    log: list[S3Request] = []

    class RecordingMotoServer(ThreadedMotoServer):
        def _server_entry(self) -> None:
            app = _recording(DomainDispatcherApplication(create_backend_app), log)
            self._server = make_server(self._ip_address, self._port, app, True,
                                       request_handler=MotoRequestHandler)
            self._server_ready_event.set()
            self._server.serve_forever()

    server = RecordingMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return server, S3Server(f"http://{host}:{port}", "AKIA" + secrets.token_hex(8).upper(),
                            secrets.token_urlsafe(30), log)


@dataclass
class SSHServer:
    host: str
    port: int
    user: str
    key_file: Path
    known_hosts: Path
    host_key_pub: Path
    process: subprocess.Popen


def start_sshd(folder: Path) -> SSHServer:
    """OpenSSH's sshd on a free loopback port, with its own host key and one user key
    (keys only, no passwords, no agent forwarding)."""
    if not os.path.exists(SSHD):
        missing(f"{SSHD} is missing: install Debian's openssh-server (make sshd)")
    folder.mkdir(parents=True, exist_ok=True)
    host_key, user_key = folder / "host_ed25519", folder / "user_ed25519"
    for key in (host_key, user_key):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)],
                       check=True)
    authorized = folder / "authorized_keys"
    shutil.copy(f"{user_key}.pub", authorized)
    port = free_port()
    config = folder / "sshd_config"
    config.write_text("\n".join([
        f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {host_key}",
        f"AuthorizedKeysFile {authorized}", "PasswordAuthentication no",
        "KbdInteractiveAuthentication no", "PubkeyAuthentication yes", "UsePAM no",
        "StrictModes no", "AllowAgentForwarding no", "PermitRootLogin prohibit-password",
        f"PidFile {folder / 'sshd.pid'}", "Subsystem sftp internal-sftp", ""]))
    Path("/run/sshd").mkdir(exist_ok=True)
    process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)],
                               stdout=subprocess.DEVNULL, stderr=open(folder / "sshd.log", "w"))
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"sshd did not start: {(folder / 'sshd.log').read_text()}")
            time.sleep(0.05)
    known_hosts = folder / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{port} {Path(f'{host_key}.pub').read_text()}")
    user = os.environ.get("USER") or subprocess.run(["id", "-un"], capture_output=True,
                                                    text=True).stdout.strip()
    return SSHServer("127.0.0.1", port, user, user_key, known_hosts,
                     Path(f"{host_key}.pub"), process)


@contextmanager
def dagster_webserver(dagster_home: Path, log: Path) -> Iterator[str]:
    """dagster-webserver on a free loopback port serving workspace.yaml and the history of the
    instance in `dagster_home`; yields its base URL once the code location has loaded (its
    GraphQL endpoint lists assets), and stops it after. Its output goes to `log`."""
    import requests

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with open(log, "w") as out:
        process = subprocess.Popen(
            [str(WEBSERVER), "-h", "127.0.0.1", "-p", str(port), "-w", "workspace.yaml"],
            env=os.environ | {"DAGSTER_HOME": str(dagster_home)},
            stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        query = {"query": "query { assetNodes { assetKey { path } } }"}
        while True:
            try:
                answer = requests.post(f"{url}/graphql", json=query, timeout=10).json()
                if (answer.get("data") or {}).get("assetNodes"):
                    break
            except requests.RequestException:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail("dagster-webserver did not serve the code location within 120 s:\n"
                            + log.read_text()[-3000:])
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


@contextmanager
def chromium_page() -> Iterator:
    """A page of Debian's headless chromium driven by playwright (which cannot fetch its own
    browser here). Dagster's first-visit "Join the Dagster community" modal, which may cover
    the page at any moment, is dismissed with its Skip button whenever it appears."""
    if not os.path.exists(CHROMIUM):
        missing(f"{CHROMIUM} is missing: install Debian's chromium (make chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("playwright is not installed: pip install -e '.[dev]'")
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(30_000)
            page.add_locator_handler(page.get_by_role("button", name="Skip"),
                                     lambda skip: skip.click())
            yield page
        finally:
            browser.close()
