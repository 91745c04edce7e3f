"""DataLoader throughput from HDF5 and MDS shards, against the image files and memory.

1,024 synthetic scenes of 4 x 256 x 256 uint8 are generated into a temporary folder, written as
one HDF5 file (uncompressed, the default) and one MDS folder, and read with batch 64, shuffled:

- files: the map-style dataset (one GeoTIFF decoded per sample), the baseline;
- hdf / mds: the shard readers through `batch_loader` (one read and one transform per batch);
- memory: a TensorDataset of the already transformed tensors, the ceiling.

Every loader returns the same (image, label, df_idx) batches. Each runs with 0, 1 and 2
workers (persistent, after a warm-up epoch) and is reported at its best. The process keeps
freed memory for reuse (`keep_freed_memory`, as geovision's training does), so no contender
page-faults through a fresh 64 MiB batch tensor every batch.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

from bench.common import bench_line
from geovision.data.datasets.synthetic import SyntheticClassification, generate
from geovision.data.shards.batching import batch_loader
from geovision.data.shards.hdf import HdfDataset
from geovision.data.shards.streaming import StreamingGeoDataset
from geovision.io.memory import keep_freed_memory

NUM_IMAGES = 1024
SIZE = 256
BATCH = 64
WORKER_COUNTS = (0, 1, 2)
EPOCHS = 2
DATASET = SyntheticClassification


def make_loader(dataset: Dataset, workers: int) -> DataLoader:
    if hasattr(dataset, "read_raw_batch"):
        return batch_loader(dataset, BATCH, shuffle=True, seed=0, num_workers=workers)
    return DataLoader(dataset, batch_size=BATCH, shuffle=True, num_workers=workers,
                      persistent_workers=workers > 0, generator=torch.Generator().manual_seed(0))


def epoch_rate(dataset: Dataset, workers: int) -> float:
    """Samples per second over the best of EPOCHS timed epochs, after a warm-up epoch."""
    loader = make_loader(dataset, workers)
    best = float("inf")
    for epoch in range(EPOCHS + 1):
        start = time.perf_counter()
        count = sum(len(batch[2]) for batch in loader)
        if epoch:
            best = min(best, time.perf_counter() - start)
    assert count == len(dataset)
    return len(dataset) / best


def best_rate(name: str, dataset: Dataset) -> tuple[float, int]:
    rates = {w: epoch_rate(dataset, w) for w in WORKER_COUNTS}
    print(f"{name}: " + ", ".join(f"{w} workers {r:.0f}/s" for w, r in rates.items()),
          flush=True)
    workers = max(rates, key=rates.get)
    return rates[workers], workers


def in_memory(dataset: Dataset) -> TensorDataset:
    images, labels, df_idx = next(iter(DataLoader(dataset, batch_size=len(dataset))))
    return TensorDataset(images, labels, df_idx)


def main() -> None:
    print(f"freed memory kept for reuse: {keep_freed_memory()}", flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="geovision-bench-loaders-"))
    try:
        root = generate(tmp / "synthetic", num_scenes=NUM_IMAGES, size=SIZE, progress=True)
        files = DATASET(root, split="all")
        hdf = DATASET.write_to_hdf(root, tmp / "hdf", df=files.df, splits=("all",))["all"]
        mds = DATASET.write_to_streaming(root, tmp / "mds", df=files.df, splits=("all",))["all"]
        print(f"{NUM_IMAGES} images of {len(DATASET.BANDS)}x{SIZE}x{SIZE} uint8; HDF5 "
              f"{hdf.num_bytes / 2**20:.0f} MiB, MDS {mds.num_bytes / 2**20:.0f} MiB; "
              f"batch {BATCH}, shuffled", flush=True)
        contenders = {
            "files": files,
            "hdf": HdfDataset(hdf.path, files.sample_transform),
            "mds": StreamingGeoDataset(str(mds.path), files.sample_transform),
            "memory": in_memory(files),
        }
        results = {name: best_rate(name, ds) for name, ds in contenders.items()}
        (files_rate, files_workers), (memory_rate, memory_workers) = (
            results["files"], results["memory"])
        for name in ("hdf", "mds"):
            rate, workers = results[name]
            label = f"loader_{name}_{workers}w"
            bench_line(f"{label}_vs_files", rate, "samples/s", f"files_{files_workers}w",
                       files_rate, 5)
            bench_line(f"{label}_vs_memory", rate, "samples/s", f"memory_{memory_workers}w",
                       memory_rate, 0.5)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
