"""Per-image statistics throughput against a naive float64 loop and the read/decode floor.

2,000 synthetic scenes of 4 x 256 x 256 uint8 (the built-in dataset's GeoTIFF layout) are
generated into a temporary folder and read from a warm page cache by every contender:

- ours: `compute_image_statistics` (exact moments, min/max and 256-bin histograms per band);
- naive: read, then `image.astype(float64).mean/std` per band, one function call per image;
- floor: read and decode only.

Ours runs once in-process (workers=1) against the serial baselines and once with 2 processes
against the floor read by 2 processes, so each ratio compares equal parallelism.

Each contender is timed in a fresh process of its own (spawned, with the same imports), in
alternating rounds, best of all: how fast one runs depends on the memory allocator's state,
and a contender that frees large arrays (naive frees a 2 MiB float64 copy per image) leaves
the next one in the same process a heap that it pays page faults for.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from bench.common import bench_line, best_of
from geovision.data.datasets.synthetic import SyntheticClassification, generate
from geovision.data.statistics import compute_image_statistics

NUM_IMAGES = 2000
SIZE = 256
WORKERS = 2
DATASET = SyntheticClassification


def read_only(path: str) -> int:
    return DATASET.read_image(path).shape[0]


def naive(path: str) -> tuple[np.ndarray, np.ndarray]:
    pixels = DATASET.read_image(path).astype(np.float64)
    return pixels.mean(axis=(1, 2)), pixels.std(axis=(1, 2))


CONTENDERS = ("floor", "naive", "ours", "floor_parallel", "ours_parallel")
ROUNDS = 2  # spawned processes per contender
REPEATS = 2  # timings in each


def contender(name: str, root: Path) -> Callable[[], object]:
    """The work that contender `name` does over every image under `root`."""
    df = DATASET.build_df(root)
    paths = [str(root / p) for p in df["image_path"]]

    def read_in_pool() -> None:  # pool start-up counts, as it does for ours
        with multiprocessing.get_context().Pool(WORKERS) as pool:
            pool.map(read_only, paths, chunksize=64)

    return {
        "floor": lambda: [read_only(p) for p in paths],
        "naive": lambda: [naive(p) for p in paths],
        "ours": lambda: compute_image_statistics(DATASET, root, df, workers=1, progress=False),
        "floor_parallel": read_in_pool,
        "ours_parallel": lambda: compute_image_statistics(DATASET, root, df, workers=WORKERS,
                                                          progress=False),
    }[name]


def _time_in_child(name: str, root: str, queue: multiprocessing.Queue) -> None:
    # A spawned process would spawn its pools too (it inherits the start method); fork, as
    # a user's process on Linux does.
    multiprocessing.set_start_method("fork", force=True)
    work = contender(name, Path(root))
    for path in DATASET.build_df(root)["image_path"]:  # warm the readers and the page cache
        read_only(str(Path(root) / path))
    queue.put(best_of(work, REPEATS))


def time_isolated(name: str, root: Path) -> float:
    """Best seconds of contender `name` in a freshly spawned process."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=_time_in_child, args=(name, str(root), queue))
    child.start()
    try:
        seconds = queue.get(timeout=600)
    finally:
        child.join()
    if child.exitcode:
        raise RuntimeError(f"benchmark process for {name} exited with {child.exitcode}")
    return seconds


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="geovision-bench-statistics-"))
    try:
        root = generate(tmp / "synthetic", num_scenes=NUM_IMAGES, size=SIZE, progress=True)
        print(f"{NUM_IMAGES} images of {len(DATASET.BANDS)}x{SIZE}x{SIZE} uint8 in {root}; "
              f"{os.cpu_count()} cores", flush=True)
        seconds = {name: float("inf") for name in CONTENDERS}
        for round_ in range(ROUNDS):
            for name in CONTENDERS:
                seconds[name] = min(seconds[name], time_isolated(name, root))
            print(f"round {round_ + 1}: " + ", ".join(
                f"{name} {NUM_IMAGES / s:.0f}/s" for name, s in seconds.items()), flush=True)
        floor, plain, serial, floor_parallel, parallel = (NUM_IMAGES / seconds[name]
                                                          for name in CONTENDERS)
        print(f"images/s: floor {floor:.0f}, naive {plain:.0f}, ours {serial:.0f}; with "
              f"{WORKERS} processes: floor {floor_parallel:.0f}, ours {parallel:.0f}", flush=True)
        bench_line("statistics_vs_naive", serial, "images/s", "naive_float64_loop", plain, 3)
        bench_line("statistics_vs_decode", serial, "images/s", "read_decode_floor", floor, 0.8)
        bench_line(f"statistics_{WORKERS}proc_vs_decode", parallel, "images/s",
                   f"read_decode_floor_{WORKERS}proc", floor_parallel, 0.8)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
