"""Per-image statistics throughput against a naive float64 loop and the read/decode floor.

2,000 synthetic scenes of 4 x 256 x 256 uint8 (the built-in dataset's GeoTIFF layout) are
generated into a temporary folder and read from a warm page cache by every contender:

- ours: `compute_image_statistics` (exact moments, min/max and 256-bin histograms per band);
- naive: read, then `image.astype(float64).mean/std` per band;
- floor: read and decode only.

Ours runs once in-process (workers=1) against the serial baselines and once with 2 processes
against the floor read by 2 processes, so each ratio compares equal parallelism.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import tempfile
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


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="geovision-bench-statistics-"))
    try:
        root = generate(tmp / "synthetic", num_scenes=NUM_IMAGES, size=SIZE, progress=True)
        df = DATASET.build_df(root)
        paths = [str(root / p) for p in df["image_path"]]
        print(f"{NUM_IMAGES} images of {len(DATASET.BANDS)}x{SIZE}x{SIZE} uint8 in {root}; "
              f"{os.cpu_count()} cores", flush=True)
        for path in paths:  # warm the page cache for everyone
            read_only(path)

        def ours(workers: int) -> None:
            compute_image_statistics(DATASET, root, df, workers=workers, progress=False)

        floor = NUM_IMAGES / best_of(lambda: [read_only(p) for p in paths])
        plain = NUM_IMAGES / best_of(lambda: [naive(p) for p in paths])
        serial = NUM_IMAGES / best_of(lambda: ours(1))

        def read_in_pool() -> None:  # pool start-up counts, as it does for ours
            with multiprocessing.get_context().Pool(WORKERS) as pool:
                pool.map(read_only, paths, chunksize=64)

        floor_parallel = NUM_IMAGES / best_of(read_in_pool)
        parallel = NUM_IMAGES / best_of(lambda: ours(WORKERS))
        print(f"images/s: floor {floor:.0f}, naive {plain:.0f}, ours {serial:.0f}; with "
              f"{WORKERS} processes: floor {floor_parallel:.0f}, ours {parallel:.0f}", flush=True)
        bench_line("statistics_vs_naive", serial, "images/s", "naive_float64_loop", plain, 3)
        bench_line("statistics_vs_decode", serial, "images/s", "read_decode_floor", floor, 0.8)
        bench_line(f"statistics_{WORKERS}proc_vs_decode", parallel, "images/s",
                   f"read_decode_floor_{WORKERS}proc", floor_parallel, 0.8)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
