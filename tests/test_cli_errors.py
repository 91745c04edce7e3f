"""How the CLI reports failures: a user's error as one line and exit 2, a bug with its
traceback. Each runs `geovision.cli.main` in a fresh Python, as the console script does."""

from __future__ import annotations

import functools
import subprocess
import sys
import textwrap
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest


def run_python(code: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, cwd=cwd, timeout=120)


@pytest.fixture()
def served(tmp_path):
    """A folder served over HTTP on loopback; yields (folder, base URL)."""
    folder = tmp_path / "served"
    folder.mkdir()

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, fmt, *args) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=folder))
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


def test_a_checksum_mismatch_is_one_line_and_exit_2(served, tmp_path):
    folder, url = served
    (folder / "EuroSATallBands.zip").write_bytes(b"not the published archive")
    done = run_python(f"""
        from geovision.cli import main
        from geovision.data import get_dataset
        from geovision.data.download import Resource

        # The published file, at a loopback address, with its published md5.
        get_dataset("eurosat").RESOURCES = (Resource(
            "{url}EuroSATallBands.zip", "EuroSATallBands.zip",
            md5="5ac12b3b2557aa56e1826e981e8e200e"),)
        main(["datasets", "prepare", "eurosat", "--home", "{tmp_path / 'home'}"])
    """, tmp_path)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]  # after the download's progress bar
    assert last.startswith(f"error: EuroSATallBands.zip from {url}EuroSATallBands.zip: ")
    assert "The file was deleted" in last and not (folder.parent / "home" / "index").exists()


def test_a_missing_run_is_one_line_and_exit_2(tmp_path):
    done = run_python(f"""
        from geovision.cli import main
        main(["test", "nowhere/none", "--home", "{tmp_path / 'home'}"])
    """, tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith("error: No run directory 'nowhere/none'")
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_a_bug_keeps_its_traceback(tmp_path):
    done = run_python("""
        from geovision.cli import app, main

        @app.command("broken")
        def broken() -> None:
            {}["key"]  # an internal bug, not an error the user could fix

        main(["broken"])
    """, tmp_path)
    assert done.returncode == 1
    assert "Traceback (most recent call last)" in done.stderr
    assert done.stderr.strip().endswith("KeyError: 'key'")
