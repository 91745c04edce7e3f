"""Downloads against a local HTTP server on loopback: verification, resume, retries, HTML pages,
unsafe archives and interrupted extraction."""

from __future__ import annotations

import hashlib
import io
import json
import random
import tarfile
import threading
import zipfile
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from geovision.data.download import (
    DOWNLOADS_DIR,
    MARKER,
    ChecksumMismatchError,
    DownloadError,
    HtmlResponseError,
    ManualDownloadError,
    Resource,
    UnsafeArchiveError,
    download_and_extract,
    fetch,
    read_marker,
    require_manual_files,
)

# Incompressible content, so the archives are a few kB and a resume offset lands mid-file.
FILES = {"pkg/a.txt": random.Random(0).randbytes(3000),
         "pkg/sub/b.txt": random.Random(1).randbytes(2000)}
HTML = b"<!DOCTYPE html>\n<html><body>Please sign in</body></html>"


def make_tar(entries: list[tarfile.TarInfo | tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for entry in entries:
            if isinstance(entry, tarfile.TarInfo):
                tar.addfile(entry)
            else:
                info = tarfile.TarInfo(entry[0])
                info.size = len(entry[1])
                tar.addfile(info, io.BytesIO(entry[1]))
    return buffer.getvalue()


def make_zip(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


GOOD_TAR = make_tar(list(FILES.items()))


@dataclass
class Route:
    body: bytes
    behaviour: str = "ok"  # ok | drop | fail | ignore_range | html | no_length
    times: int = 0  # how many first requests misbehave (drop, fail)
    content_type: str = "application/octet-stream"


class LocalServer:
    """A ThreadingHTTPServer on 127.0.0.1 serving `routes`, recording every request."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[tuple[str, str | None]] = []
        state = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
                range_header = self.headers.get("Range")
                seen = sum(1 for path, _ in state.requests if path == self.path)
                state.requests.append((self.path, range_header))
                route = state.routes.get(self.path)
                if route is None:
                    self.send_error(404, "Not Found")
                    return
                if route.behaviour == "fail" and seen < route.times:
                    self.send_error(503, "Service Unavailable")
                    return
                if route.behaviour == "html":
                    self._send(200, HTML, "text/html; charset=utf-8")
                    return
                body, status, extra = route.body, 200, {}
                if range_header and route.behaviour != "ignore_range":
                    start = int(range_header.removeprefix("bytes=").rstrip("-"))
                    if start >= len(body):
                        self._send(416, b"", route.content_type)
                        return
                    status = 206
                    extra["Content-Range"] = f"bytes {start}-{len(body) - 1}/{len(body)}"
                    body = body[start:]
                if route.behaviour == "drop" and seen < route.times:
                    self._send(status, body[: len(body) // 2], route.content_type, extra,
                               length=len(body))
                    return  # HTTP/1.0: the connection closes with half the promised bytes
                self._send(status, body, route.content_type, extra,
                           length=None if route.behaviour == "no_length" else len(body))

            def _send(self, status, body, content_type, extra=None, length=None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                if length is not None or status == 416:
                    self.send_header("Content-Length", str(len(body) if length is None
                                                           else length))
                for key, value in (extra or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)
                self.wfile.flush()

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,),
                                       daemon=True)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{name}"

    def add(self, name: str, route: Route) -> str:
        self.routes[f"/{name}"] = route
        return self.url(name)


@pytest.fixture()
def server():
    srv = LocalServer()
    srv.thread.start()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def resource(server: LocalServer, name: str, body: bytes, **route) -> Resource:
    return Resource(server.add(name, Route(body, **route)), name, sha256=sha256(body))


def run(resources, root: Path, sleeps: list | None = None, **kwargs) -> Path:
    return download_and_extract(resources, root, progress=False, timeout_s=5, backoff_s=0.5,
                                sleep=(sleeps if sleeps is not None else []).append, **kwargs)


def extracted(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in root.rglob("*")
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)}


def test_download_verifies_extracts_and_skips_when_done(server, tmp_path):
    root = tmp_path / "ds"
    archive = resource(server, "data.tar.gz", GOOD_TAR)
    listing = Resource(server.add("list.txt", Route(b"a\nb\n")), "list.txt",
                       md5=hashlib.md5(b"a\nb\n").hexdigest())
    assert run([archive, listing], root) == root
    assert extracted(root) == {**FILES, "list.txt": b"a\nb\n"}
    assert not (root / DOWNLOADS_DIR).exists()  # the archive is removed after extraction
    assert not list(root.glob(".extract-*"))
    marker = read_marker(root)
    assert marker["data.tar.gz"] == {"url": archive.url, "entries": ["pkg"],
                                     "checksum": f"sha256:{sha256(GOOD_TAR)}"}
    assert marker["list.txt"]["checksum"] == f"md5:{listing.md5}"
    requests_before = len(server.requests)
    run([archive, listing], root)
    assert len(server.requests) == requests_before  # verified result in place: no work
    # a deleted entry is restored on the next run
    (root / "pkg" / "a.txt").unlink()
    (root / "pkg" / "sub" / "b.txt").unlink()
    (root / "pkg" / "sub").rmdir()
    (root / "pkg").rmdir()
    run([archive, listing], root)
    assert extracted(root)["pkg/a.txt"] == FILES["pkg/a.txt"]
    assert len(server.requests) == requests_before + 1


def test_resumes_a_partial_download_with_range(server, tmp_path):
    res = resource(server, "data.tar.gz", GOOD_TAR)
    part = tmp_path / "dl" / "data.tar.gz.part"
    part.parent.mkdir()
    part.write_bytes(GOOD_TAR[:1000])
    path = fetch(res, tmp_path / "dl", progress=False, sleep=lambda s: None)
    assert path.read_bytes() == GOOD_TAR
    assert server.requests == [("/data.tar.gz", "bytes=1000-")]
    assert not part.exists()


def test_dropped_connection_is_retried_with_backoff_and_resumed(server, tmp_path):
    res = resource(server, "data.tar.gz", GOOD_TAR, behaviour="drop", times=2)
    sleeps: list[float] = []
    run([res], tmp_path / "ds", sleeps)
    assert extracted(tmp_path / "ds") == FILES
    half = len(GOOD_TAR) // 2
    assert server.requests == [("/data.tar.gz", None), ("/data.tar.gz", f"bytes={half}-"),
                               ("/data.tar.gz", f"bytes={half + (len(GOOD_TAR) - half) // 2}-")]
    assert sleeps == [0.5, 0.5]  # each attempt added bytes: no growing backoff


def test_server_errors_are_retried_then_reported(server, tmp_path):
    res = resource(server, "data.tar.gz", GOOD_TAR, behaviour="fail", times=99)
    sleeps: list[float] = []
    with pytest.raises(DownloadError, match="failed 3 times.*503"):
        run([res], tmp_path / "ds", sleeps, retries=2)
    assert sleeps == [0.5, 1.0]
    assert len(server.requests) == 3


def test_missing_file_is_not_retried(server, tmp_path):
    res = Resource(server.url("absent.tar.gz"), "absent.tar.gz", sha256="0" * 64)
    sleeps: list[float] = []
    with pytest.raises(DownloadError, match="HTTP 404"):
        run([res], tmp_path / "ds", sleeps)
    assert sleeps == [] and len(server.requests) == 1


def test_server_ignoring_range_restarts_the_file(server, tmp_path):
    res = resource(server, "data.tar.gz", GOOD_TAR, behaviour="ignore_range")
    (tmp_path / "dl").mkdir()
    (tmp_path / "dl" / "data.tar.gz.part").write_bytes(GOOD_TAR[:700])
    assert fetch(res, tmp_path / "dl", progress=False).read_bytes() == GOOD_TAR


def test_complete_partial_file_is_verified_after_416(server, tmp_path):
    res = resource(server, "data.tar.gz", GOOD_TAR)
    (tmp_path / "dl").mkdir()
    (tmp_path / "dl" / "data.tar.gz.part").write_bytes(GOOD_TAR)
    assert fetch(res, tmp_path / "dl", progress=False).read_bytes() == GOOD_TAR
    assert server.requests == [("/data.tar.gz", f"bytes={len(GOOD_TAR)}-")]


def test_stale_partial_file_is_fetched_again_from_scratch(server, tmp_path):
    res = resource(server, "data.tar.gz", GOOD_TAR)
    (tmp_path / "dl").mkdir()
    (tmp_path / "dl" / "data.tar.gz.part").write_bytes(b"x" * 500)  # from another version
    assert fetch(res, tmp_path / "dl", progress=False).read_bytes() == GOOD_TAR
    assert server.requests == [("/data.tar.gz", "bytes=500-"), ("/data.tar.gz", None)]


def test_checksum_mismatch_leaves_nothing_behind(server, tmp_path):
    url = server.add("data.tar.gz", Route(GOOD_TAR))
    wrong = Resource(url, "data.tar.gz", sha256=sha256(b"another file"))
    root = tmp_path / "ds"
    with pytest.raises(ChecksumMismatchError) as err:
        run([wrong], root)
    assert sha256(GOOD_TAR) in str(err.value) and sha256(b"another file") in str(err.value)
    assert not (root / "pkg").exists() and not (root / MARKER).exists()
    assert not list((root / DOWNLOADS_DIR).iterdir())  # neither the file nor its .part
    md5_wrong = Resource(url, "data.tar.gz", md5="0" * 32)
    with pytest.raises(ChecksumMismatchError, match="md5"):
        run([md5_wrong], root)
    sized = Resource(url, "data.tar.gz", sha256=sha256(GOOD_TAR), size=len(GOOD_TAR) + 1)
    with pytest.raises(ChecksumMismatchError, match="published size"):
        run([sized], root)


@pytest.mark.parametrize("behaviour", ["html", "html_body"])
def test_html_page_instead_of_archive_is_recognised(server, tmp_path, behaviour):
    if behaviour == "html":
        url = server.add("data.tar.gz", Route(GOOD_TAR, behaviour="html"))
    else:  # an HTML body sent with a binary content type, without a length
        url = server.add("data.tar.gz", Route(b"  \n" + HTML, behaviour="no_length"))
    res = Resource(url, "data.tar.gz", sha256=sha256(GOOD_TAR))
    sleeps: list[float] = []
    with pytest.raises(HtmlResponseError, match="web page instead of data.tar.gz"):
        run([res], tmp_path / "ds", sleeps)
    assert sleeps == []  # not retried: a login page stays a login page
    assert not (tmp_path / "ds" / DOWNLOADS_DIR / "data.tar.gz.part").exists()


UNSAFE = {
    "parent.tar.gz": make_tar([("pkg/ok.txt", b"ok"), ("../evil.txt", b"x")]),
    "absolute.tar.gz": make_tar([("/tmp/evil.txt", b"x")]),
    "nested_parent.tar.gz": make_tar([("pkg/../../evil.txt", b"x")]),
    "symlink.tar.gz": make_tar([("pkg/ok.txt", b"ok"), link("pkg/escape", "../../outside")]),
    "abs_symlink.tar.gz": make_tar([link("pkg/passwd", "/etc/passwd")]),
    "hardlink.tar.gz": make_tar([link("pkg/hard", "/etc/passwd", tarfile.LNKTYPE)]),
    "device.tar.gz": make_tar([link("pkg/dev", "", tarfile.CHRTYPE)]),
    "parent.zip": make_zip({"pkg/ok.txt": b"ok", "../evil.txt": b"x"}),
    "absolute.zip": make_zip({"/evil.txt": b"x"}),
}


@pytest.mark.parametrize("name", sorted(UNSAFE))
def test_unsafe_archives_are_refused(server, tmp_path, name):
    body = UNSAFE[name]
    root = tmp_path / "area" / "ds"
    with pytest.raises(UnsafeArchiveError, match="refusing"):
        run([resource(server, name, body)], root)
    assert not (tmp_path / "area" / "evil.txt").exists()
    assert not (tmp_path / "evil.txt").exists()
    assert not (root / "pkg").exists()  # nothing reaches the root, not even the safe members
    assert not list(root.glob(".extract-*")) and not (root / MARKER).exists()


def test_zip_symlinks_are_refused(server, tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        info = zipfile.ZipInfo("pkg/link")
        info.external_attr = (0o120777 << 16)
        zf.writestr(info, "../../outside")
    with pytest.raises(UnsafeArchiveError, match="symbolic link"):
        run([resource(server, "link.zip", buffer.getvalue())], tmp_path / "ds")


def test_interrupted_extraction_leaves_nothing_half_extracted(server, tmp_path):
    truncated = GOOD_TAR[: len(GOOD_TAR) // 2]  # verifies (its own checksum), then breaks
    root = tmp_path / "ds"
    (root / ".extract-killed.partial" / "pkg").mkdir(parents=True)  # a killed earlier run
    with pytest.raises(DownloadError, match="corrupt or truncated"):
        run([resource(server, "data.tar.gz", truncated)], root)
    assert not (root / "pkg").exists() and not list(root.glob(".extract-*"))
    assert not (root / MARKER).exists()


def test_reextraction_replaces_entries_whole(server, tmp_path):
    root = tmp_path / "ds"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "stale.txt").write_text("from an older, half-finished run")
    run([resource(server, "data.tar.gz", GOOD_TAR)], root)
    assert extracted(root) == FILES


def test_zip_archives_extract(server, tmp_path):
    root = tmp_path / "ds"
    run([resource(server, "data.zip", make_zip(FILES))], root, keep_archives=True)
    assert extracted(root) == FILES
    assert (root / DOWNLOADS_DIR / "data.zip").is_file()  # kept on request
    assert json.loads((root / MARKER).read_text())["data.zip"]["entries"] == ["pkg"]


def test_resource_checks_its_fields():
    with pytest.raises(ValueError, match="plain file name"):
        Resource("http://127.0.0.1/x", "../x.tar")
    with pytest.raises(ValueError, match="64 lowercase hex"):
        Resource("http://127.0.0.1/x", "x.tar", sha256="abc")
    assert Resource("u", "a.tar.gz").is_archive and not Resource("u", "a.csv").is_archive
    assert not Resource("u", "a.zip", extract=False).is_archive


def test_manual_download_names_the_file_and_place(tmp_path):
    with pytest.raises(ManualDownloadError) as err:
        require_manual_files("inria", tmp_path, [("AerialImageDataset/train/gt/austin1.tif",)],
                             "Register first.")
    assert "Register first." in str(err.value)
    assert str(tmp_path / "AerialImageDataset/train/gt/austin1.tif") in str(err.value)
    (tmp_path / "b").mkdir()
    assert require_manual_files("x", tmp_path, [("a",), ("b",)], "") == tmp_path
