"""The torchgeo side of `python -m bench tiling`, run in torchgeo's own virtualenv.

torchgeo pulls hydra-core / omegaconf, which break Dagster's `--select` parser, so it never
enters the project's environment: bench/tiling.py runs this file with the interpreter of
.bench_venvs/torchgeo and reads the last line it prints. It imports nothing from geovision.

Usage: python -I _torchgeo_tiling.py SCENE_FOLDER CHIP STRIDE BATCH REPEATS WORKERS...
(-I keeps bench/ off sys.path: its statistics.py would shadow the standard library.)
Prints one line per worker count, then `CHIPS_PER_S <best rate> workers=<n> chips=<count>`.
"""

from __future__ import annotations

import sys
import time


def epoch_rate(folder: str, chip: int, stride: int, batch: int, workers: int) -> tuple[float, int]:
    from torch.utils.data import DataLoader
    from torchgeo.datasets import RasterDataset, stack_samples
    from torchgeo.samplers import GridGeoSampler

    dataset = RasterDataset(paths=folder)  # a fresh dataset: no file handle or block cached
    sampler = GridGeoSampler(dataset, size=chip, stride=stride)
    loader = DataLoader(dataset, sampler=sampler, batch_size=batch, num_workers=workers,
                        collate_fn=stack_samples)
    start = time.perf_counter()
    count = sum(len(b["image"]) for b in loader)
    return count / (time.perf_counter() - start), count


def main(argv: list[str]) -> None:
    folder, chip, stride, batch, repeats = argv[0], *(int(a) for a in argv[1:5])
    best_rate, best_workers, chips = 0.0, 0, 0
    for workers in (int(a) for a in argv[5:]):
        rates = []
        for _ in range(repeats):
            rate, chips = epoch_rate(folder, chip, stride, batch, workers)
            rates.append(rate)
        print(f"torchgeo {workers} workers: {max(rates):.0f} chips/s", flush=True)
        if max(rates) > best_rate:
            best_rate, best_workers = max(rates), workers
    print(f"CHIPS_PER_S {best_rate:.3f} workers={best_workers} chips={chips}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
