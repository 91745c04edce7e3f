"""DataLoader throughput from HDF5 and MDS shards, against the image files and memory.

1,024 synthetic scenes of 4 x 256 x 256 uint8 are generated into a temporary folder, written as
one HDF5 file (uncompressed, the default) and one MDS folder, and read with batch 64, shuffled:

- files: the map-style dataset (one GeoTIFF decoded per sample), the baseline;
- hdf / mds: the shard readers through `batch_loader` (one read and one transform per batch);
- memory: a TensorDataset of the already transformed tensors, the ceiling.

Every loader returns the same (image, label, df_idx) batches. Each runs with 0, 1 and 2
workers (persistent, after a warm-up epoch). Shared machines drift, so the loaders take turns:
each of ROUNDS rounds times one epoch of every loader, a source's rate in a round is that of
its best worker count, and each ratio is the median over rounds of the ratio within a round;
rates are medians too. The process keeps freed memory for reuse (`keep_freed_memory`, as
geovision's training does), so no contender page-faults through a fresh 64 MiB batch tensor
every batch.

Measured design choices (2-core VM, shared), moved here from the code:

- keeping freed memory (geovision.io.memory): a DataLoader over HDF5 shards went from 2,700 to
  10,700 samples/s with it;
- standardising a batch as a converting copy then two in-place float passes: a multiply that
  converts as it goes (torch.mul(uint8, float32, out=)) measured 1.7-2.9x slower;
- joining the dataset root to image paths with os.path.join over a list of str: 0.5 us a path,
  against 5 us for pathlib's `/` (2.5 s for 500,000 images) and 1.4 us iterating the Series;
- not checking every file when the caller reads them all anyway: one stat per file costs about
  30 us on a VM, a twentieth of reading the file.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

from bench.common import median_line
from geovision.data.datasets.synthetic import SyntheticClassification, generate
from geovision.data.shards.batching import batch_loader
from geovision.data.shards.hdf import HdfDataset, write_hdf_splits
from geovision.data.shards.streaming import StreamingGeoDataset, write_streaming_splits
from geovision.io.memory import keep_freed_memory

NUM_IMAGES = 1024
SIZE = 256
BATCH = 64
WORKER_COUNTS = (0, 1, 2)
ROUNDS = 5
DATASET = SyntheticClassification


def make_loader(dataset: Dataset, workers: int) -> DataLoader:
    if hasattr(dataset, "read_raw_batch"):
        return batch_loader(dataset, BATCH, shuffle=True, seed=0, num_workers=workers)
    return DataLoader(dataset, batch_size=BATCH, shuffle=True, num_workers=workers,
                      persistent_workers=workers > 0, generator=torch.Generator().manual_seed(0))


def epoch_rate(loader: DataLoader) -> float:
    """Samples per second over one epoch."""
    start = time.perf_counter()
    count = sum(len(batch[2]) for batch in loader)
    seconds = time.perf_counter() - start
    assert count == NUM_IMAGES
    return count / seconds


def measure(contenders: dict[str, Dataset]) -> list[dict[str, tuple[float, int]]]:
    """Per round, each source's best rate over the worker counts, and that count."""
    loaders = {(name, w): make_loader(ds, w) for name, ds in contenders.items()
               for w in WORKER_COUNTS}
    for loader in loaders.values():  # start the workers, warm the caches
        epoch_rate(loader)
    rounds = []
    for turn in range(ROUNDS):
        rates = {key: epoch_rate(loader) for key, loader in loaders.items()}
        best = {}
        for name in contenders:
            workers = max(WORKER_COUNTS, key=lambda w, name=name: rates[name, w])
            best[name] = (rates[name, workers], workers)
        print(f"round {turn + 1}: " + "; ".join(
            f"{name} " + ", ".join(f"{w}w {rates[name, w]:.0f}/s" for w in WORKER_COUNTS)
            for name in contenders), flush=True)
        rounds.append(best)
    return rounds


def in_memory(dataset: Dataset) -> TensorDataset:
    images, labels, df_idx = next(iter(DataLoader(dataset, batch_size=len(dataset))))
    return TensorDataset(images, labels, df_idx)


def main() -> None:
    print(f"freed memory kept for reuse: {keep_freed_memory()}", flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="geovision-bench-loaders-"))
    try:
        root = generate(tmp / "synthetic", num_scenes=NUM_IMAGES, size=SIZE, progress=True)
        files = DATASET(root, split="all")
        hdf = write_hdf_splits(DATASET, root, tmp / "hdf", df=files.df, splits=("all",))["all"]
        mds = write_streaming_splits(DATASET, root, tmp / "mds", df=files.df,
                                     splits=("all",))["all"]
        print(f"{NUM_IMAGES} images of {len(DATASET.BANDS)}x{SIZE}x{SIZE} uint8; HDF5 "
              f"{hdf.num_bytes / 2**20:.0f} MiB, MDS {mds.num_bytes / 2**20:.0f} MiB; "
              f"batch {BATCH}, shuffled", flush=True)
        contenders = {
            "files": files,
            "hdf": HdfDataset(hdf.path, files.sample_transform),
            "mds": StreamingGeoDataset(str(mds.path), files.sample_transform),
            "memory": in_memory(files),
        }
        rounds = measure(contenders)

        def median_rate(name: str) -> tuple[float, int]:
            workers = Counter(r[name][1] for r in rounds).most_common(1)[0][0]
            return statistics.median(r[name][0] for r in rounds), workers

        medians = {name: median_rate(name) for name in contenders}
        print(f"samples/s, median of {ROUNDS} rounds (most often best worker count): "
              + ", ".join(f"{n} {r:.0f} ({w}w)" for n, (r, w) in medians.items()), flush=True)
        for name in ("hdf", "mds"):
            workers = medians[name][1]
            for baseline, goal in (("files", 5), ("memory", 0.5)):
                median_line(f"loader_{name}_{workers}w_vs_{baseline}",
                            [r[name][0] for r in rounds], "samples/s",
                            f"{baseline}_{medians[baseline][1]}w",
                            [r[baseline][0] for r in rounds], goal)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
