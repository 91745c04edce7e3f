"""S3 transfers: S3IO (s5cmd) against boto3 and against raw s5cmd, to moto's S3 server.

The same work for each contender, to a moto server on loopback in a process of its own:
uploading and downloading a folder of 1,000 small files, and one large file. boto3 is what a
script would write: one client, `upload_file` / `download_file` per object in a loop (its
transfer manager splits the large file into parallel parts). Raw s5cmd is the binary called
by hand with the same arguments S3IO gives it, so the ratio against it is S3IO's own cost
(building arguments, parsing JSON lines, atomic renames). Rounds rotate the contenders' order;
each ratio is the median of the ratios within a round (bench/common.py). Figures against moto
measure the clients and moto's request handling, not a network: the CPU seconds moto's process
spends on each transfer are printed too, since a client that keeps moto busy all the time (wall
time = moto's CPU time) cannot go faster against it, whatever it does itself. Each contender's
objects are removed after its round, so moto holds as much for everyone.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SMALL_FILES = 1000
SMALL_BYTES = 4096
LARGE_BYTES = 64 << 20
ROUNDS = 5
GOAL_BOTO3_SMALL = 3.0
GOAL_BOTO3_LARGE = 1.0
GOAL_RAW = 0.9


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_moto() -> tuple[subprocess.Popen, str]:
    """moto's S3 server in its own process (so it does not share this one's GIL)."""
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p",
                               str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return server, f"http://127.0.0.1:{port}"
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                raise SystemExit("moto's S3 server did not start: pip install "
                                 "'moto[server]'") from None
            time.sleep(0.1)


def make_data(root: Path) -> tuple[Path, Path]:
    small = root / "small"
    small.mkdir()
    for i in range(SMALL_FILES):
        (small / f"f{i:04d}.bin").write_bytes(os.urandom(SMALL_BYTES))
    large = root / "large.bin"
    with open(large, "wb") as f:
        for _ in range(LARGE_BYTES >> 20):
            f.write(os.urandom(1 << 20))
    return small, large


def server_cpu(server: subprocess.Popen) -> float:
    """CPU seconds (user + system) the server process has used so far."""
    import psutil

    times = psutil.Process(server.pid).cpu_times()
    return times.user + times.system


def timed(fn, server: subprocess.Popen) -> tuple[float, float]:
    """(wall seconds of fn(), CPU seconds the server spent meanwhile)."""
    cpu, start = server_cpu(server), time.perf_counter()
    fn()
    return time.perf_counter() - start, server_cpu(server) - cpu


class S3IOContender:
    name = "s3io"

    def __init__(self, endpoint: str) -> None:
        from geovision.io.s3 import S3IO

        self.s3 = S3IO(endpoint_url=endpoint, timeout=600)

    def upload_dir(self, local: Path, url: str) -> None:
        assert self.s3.upload_dir(local, url) == SMALL_FILES

    def download_dir(self, url: str, local: Path) -> None:
        assert self.s3.download_dir(url, local) == SMALL_FILES

    def upload_file(self, local: Path, url: str) -> None:
        self.s3.upload_file(local, url)

    def download_file(self, url: str, local: Path) -> None:
        self.s3.download_file(url, local)


class RawS5cmd:
    """The s5cmd binary with the arguments S3IO passes, nothing around it."""

    name = "s5cmd"

    def __init__(self, endpoint: str) -> None:
        from geovision.io.s3 import s5cmd_binary

        self.args = [s5cmd_binary(), "--json", "--endpoint-url", endpoint]
        self.env = dict(os.environ, AWS_EC2_METADATA_DISABLED="true")

    def run(self, *args: str) -> None:
        subprocess.run([*self.args, *args], env=self.env, check=True, capture_output=True)

    def upload_dir(self, local: Path, url: str) -> None:
        self.run("cp", f"{local}/*", url.rstrip("/") + "/")

    def download_dir(self, url: str, local: Path) -> None:
        self.run("cp", url.rstrip("/") + "/*", f"{local}/")

    def upload_file(self, local: Path, url: str) -> None:
        self.run("cp", str(local), url)

    def download_file(self, url: str, local: Path) -> None:
        self.run("cp", url, str(local))


class Boto3Loop:
    """A script's boto3: one client, one call per object."""

    name = "boto3"

    def __init__(self, endpoint: str) -> None:
        import boto3

        self.client = boto3.client("s3", endpoint_url=endpoint)

    @staticmethod
    def split(url: str) -> tuple[str, str]:
        bucket, _, key = url[5:].partition("/")
        return bucket, key

    def upload_dir(self, local: Path, url: str) -> None:
        bucket, prefix = self.split(url.rstrip("/") + "/")
        for path in sorted(local.iterdir()):
            self.client.upload_file(str(path), bucket, prefix + path.name)

    def download_dir(self, url: str, local: Path) -> None:
        bucket, prefix = self.split(url.rstrip("/") + "/")
        local.mkdir(parents=True, exist_ok=True)
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket,
                                                                       Prefix=prefix)
        keys = [o["Key"] for page in pages for o in page.get("Contents", [])]
        assert len(keys) == SMALL_FILES
        for key in keys:
            self.client.download_file(bucket, key, str(local / key[len(prefix):]))

    def upload_file(self, local: Path, url: str) -> None:
        self.client.upload_file(str(local), *self.split(url))

    def download_file(self, url: str, local: Path) -> None:
        self.client.download_file(*self.split(url), str(local))


def one_round(contender, small: Path, large: Path, bucket: str, scratch: Path,
              server: subprocess.Popen, cleaner) -> dict:
    """{phase: wall seconds, phase + "_server": moto's CPU seconds} of one contender. The
    objects are removed (by `cleaner`, an S3IO) afterwards: moto slows as it holds more
    objects, which would favour whoever went first."""
    tag = f"{contender.name}-{secrets.token_hex(3)}"
    out = scratch / tag
    out.mkdir()
    base = f"s3://{bucket}/{tag}"
    work = {
        "small_up": lambda: contender.upload_dir(small, f"{base}/small"),
        "small_down": lambda: contender.download_dir(f"{base}/small", out / "small"),
        "large_up": lambda: contender.upload_file(large, f"{base}/large.bin"),
        "large_down": lambda: contender.download_file(f"{base}/large.bin", out / "large.bin"),
    }
    times = {}
    for phase, fn in work.items():  # in this order: each download needs its upload
        times[phase], times[phase + "_server"] = timed(fn, server)
    assert (out / "large.bin").stat().st_size == LARGE_BYTES
    assert len(list((out / "small").iterdir())) == SMALL_FILES
    shutil.rmtree(out)
    cleaner.remove(base + "/")
    return times


def main() -> None:
    import statistics

    from bench.common import median_line

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench-secret")
    os.environ.setdefault("AWS_REGION", "us-east-1")
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    server, endpoint = start_moto()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-io-") as tmp:
            scratch = Path(tmp)
            small, large = make_data(scratch)
            contenders = [S3IOContender(endpoint), RawS5cmd(endpoint), Boto3Loop(endpoint)]
            bucket = "bench-io-" + secrets.token_hex(4)
            contenders[0].s3.make_bucket(bucket)
            results: dict[str, list[dict]] = {c.name: [] for c in contenders}
            for turn in range(ROUNDS):
                for k in range(len(contenders)):
                    c = contenders[(turn + k) % len(contenders)]
                    results[c.name].append(one_round(c, small, large, bucket, scratch,
                                                      server, contenders[0].s3))
    finally:
        server.terminate()
        server.wait(timeout=30)

    def median(name: str, what: str) -> float:
        return statistics.median(r[what] for r in results[name])

    def rates(name: str, what: str, amount: float) -> list[float]:
        return [amount / r[what] for r in results[name]]

    mib = LARGE_BYTES / (1 << 20)
    for what, label in (("small_up", "upload"), ("small_down", "download")):
        print(f"{SMALL_FILES} x {SMALL_BYTES} B {label}: s3io {median('s3io', what):.2f} s, "
              f"s5cmd {median('s5cmd', what):.2f} s, boto3 {median('boto3', what):.2f} s; "
              f"moto's CPU meanwhile {median('s3io', what + '_server'):.2f}, "
              f"{median('s5cmd', what + '_server'):.2f} and "
              f"{median('boto3', what + '_server'):.2f} s")
        for name in results:
            walls = sorted(r[what] for r in results[name])
            print(f"  {name}: {walls[0]:.2f}-{walls[-1]:.2f} s across rounds")
        ours = rates("s3io", what, SMALL_FILES)
        median_line(f"io_small_{label}_vs_boto3", ours, "files/s", "boto3_loop",
                    rates("boto3", what, SMALL_FILES), GOAL_BOTO3_SMALL)
        median_line(f"io_small_{label}_vs_s5cmd", ours, "files/s", "raw_s5cmd",
                    rates("s5cmd", what, SMALL_FILES), GOAL_RAW)
    for what, label in (("large_up", "upload"), ("large_down", "download")):
        print(f"{mib:.0f} MiB {label}: s3io {median('s3io', what):.2f} s, "
              f"s5cmd {median('s5cmd', what):.2f} s, boto3 {median('boto3', what):.2f} s")
        ours = rates("s3io", what, mib)
        median_line(f"io_large_{label}_vs_boto3", ours, "MiB/s", "boto3_transfer",
                    rates("boto3", what, mib), GOAL_BOTO3_LARGE)
        median_line(f"io_large_{label}_vs_s5cmd", ours, "MiB/s", "raw_s5cmd",
                    rates("s5cmd", what, mib), GOAL_RAW)
