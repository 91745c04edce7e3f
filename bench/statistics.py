"""Per-image statistics throughput against a naive float64 loop and the read/decode floor.

2,000 synthetic scenes of 4 x 256 x 256 uint8 (the built-in dataset's GeoTIFF layout) are
generated into a temporary folder and read from a warm page cache by every contender:

- ours: `compute_image_statistics` (exact moments, min/max and 256-bin histograms per band);
- naive: read, then `image.astype(float64).mean/std` per band, one function call per image;
- floor: read and decode only.

Ours runs once in-process (workers=1) against the serial baselines and once with 2 processes
against the floor read by 2 processes, so each ratio compares equal parallelism.

Shared machines drift: on a 2-core VM the floor alone ranged 630-1,060 us per image within
one run. So the contenders take turns: in each round every contender runs once over all the
images, in a rotating order, and each ratio is the median over the ROUNDS of
the ratio within a round (contenders a few seconds apart see the same machine); rates are the
median per contender. Each contender runs in a freshly spawned process of its own, kept for
all its turns, with the allocator's default settings as a user's script has them: sharing a
process, the naive loop's 2 MiB float64 frees would leave the next contender a heap to
page-fault through again.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from bench.common import best_of, contenders_in_rounds, median_line
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
ROUNDS = 8  # timed runs of each contender


BASELINE_NAMES = {"naive": "naive_float64_loop", "floor": "read_decode_floor",
                  "floor_parallel": f"read_decode_floor_{WORKERS}proc"}


def contender(name: str, root: Path, df: pd.DataFrame) -> Callable[[], object]:
    """The work that contender `name` does over the images of `df` under `root`."""
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


def timed_contender(name: str, root: str) -> Callable[[], float]:
    """Contender `name` over all the images under `root`, in seconds per image."""
    df = DATASET.build_df(root)
    for path in df["image_path"]:  # warm the readers and the page cache
        read_only(str(Path(root) / path))
    work = contender(name, Path(root), df)
    return lambda: best_of(work, 1) / NUM_IMAGES


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="geovision-bench-statistics-"))
    try:
        root = generate(tmp / "synthetic", num_scenes=NUM_IMAGES, size=SIZE, progress=True)
        print(f"{NUM_IMAGES} images of {len(DATASET.BANDS)}x{SIZE}x{SIZE} uint8 in {root}; "
              f"{os.cpu_count()} cores", flush=True)
        rounds = contenders_in_rounds(CONTENDERS, timed_contender, (str(root),), ROUNDS)
        rate = {name: float(np.median([1 / r[name] for r in rounds])) for name in CONTENDERS}
        print(f"images/s (median of {ROUNDS} rounds): floor {rate['floor']:.0f}, naive "
              f"{rate['naive']:.0f}, ours {rate['ours']:.0f}; with {WORKERS} processes: floor "
              f"{rate['floor_parallel']:.0f}, ours {rate['ours_parallel']:.0f}", flush=True)
        for name in CONTENDERS:
            rates = [1 / r[name] for r in rounds]
            print(f"  {name}: {min(rates):.0f}-{max(rates):.0f} images/s across rounds")
        for key, ours, baseline, goal in [
                ("statistics_vs_naive", "ours", "naive", 3),
                ("statistics_vs_decode", "ours", "floor", 0.8),
                (f"statistics_{WORKERS}proc_vs_decode", "ours_parallel", "floor_parallel", 0.8)]:
            median_line(key, [1 / r[ours] for r in rounds], "images/s",
                        BASELINE_NAMES[baseline], [1 / r[baseline] for r in rounds], goal)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
