"""Chips per second out of one large scene, and back into it.

One 5000 x 5000 x 3 uint8 GeoTIFF (256 x 256 tiles, uncompressed, like an Inria tile) is
written to a temporary folder and cut into 256 px chips overlapping by 32 px (border "pad"):

- windowed reads: a plain loop of rasterio `src.read(window=...)` over the same grid, the
  floor to approach;
- ChipDataset: the chip index read through a DataLoader (batch 64, `collate_chips`), best of
  0, 1 and 2 workers;
- torchgeo: RasterDataset + GridGeoSampler + DataLoader on the same scene and grid, best of
  0, 1 and 2 workers, run in its own virtualenv (.bench_venvs/torchgeo, created on first use)
  because torchgeo's dependencies break Dagster's in the project's environment;
- stitch: the chips (an identity model's predictions, held in memory) written back into a
  GeoTIFF with mean blending, checked equal to the scene.

Every pass starts with freshly opened files, so GDAL's block cache is cold and every
contender decodes the tiles it needs once per pass; the operating system's page cache is
warm for all. Each figure is the best of REPEATS passes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import bench_line

SIZE = 5000
BANDS = 3
CHIP = 256
OVERLAP = 32
BATCH = 64
WORKER_COUNTS = (0, 1, 2)
REPEATS = 5
TORCHGEO_REPEATS = 2
GOAL_TORCHGEO = 10.0
GOAL_FLOOR = 0.5
GOAL_STITCH = 0.5
VENV = Path(__file__).resolve().parent.parent / ".bench_venvs" / "torchgeo"
TORCHGEO_PACKAGES = ("torchgeo", "requests", "torch==2.14.1", "torchvision==0.29.1")
TORCHGEO_SCRIPT = Path(__file__).resolve().parent / "_torchgeo_tiling.py"


def make_scene(path: Path) -> None:
    """A deterministic RGB scene: smooth fields plus noise, written a band of tiles at a time."""
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    rng = np.random.default_rng(0)
    profile = {"driver": "GTiff", "height": SIZE, "width": SIZE, "count": BANDS,
               "dtype": "uint8", "crs": "EPSG:32633", "tiled": True, "blockxsize": 256,
               "blockysize": 256, "transform": from_origin(500_000, 4_000_000, 0.3, 0.3)}
    x = np.arange(SIZE)[None]
    with rasterio.open(path, "w", **profile) as dst:
        for row in range(0, SIZE, 256):
            y = np.arange(row, min(row + 256, SIZE))[:, None]
            field = (np.sin(y / 37) + np.cos(x / 53)) * 60 + 128
            noise = rng.integers(0, 24, (BANDS, len(y), SIZE))
            dst.write((field[None] + noise).clip(0, 255).astype(np.uint8),
                      window=Window(0, row, SIZE, len(y)))


def windowed_reads(path: Path, windows: np.ndarray) -> float:
    """Chips per second of a plain loop of windowed reads (clipped to the scene)."""
    import rasterio
    from rasterio.windows import Window

    with rasterio.open(path) as src:
        start = time.perf_counter()
        for row, col, height, width in windows:
            src.read(window=Window(col, row, min(width, SIZE - col), min(height, SIZE - row)))
        return len(windows) / (time.perf_counter() - start)


def chip_dataset(chips, workers: int) -> float:
    """Chips per second of one DataLoader pass over a fresh ChipDataset."""
    from torch.utils.data import DataLoader

    from geovision.data.tiling import ChipDataset, collate_chips

    loader = DataLoader(ChipDataset(chips), batch_size=BATCH, num_workers=workers,
                        collate_fn=collate_chips)
    start = time.perf_counter()
    count = sum(len(batch[2]) for batch in loader)
    rate = count / (time.perf_counter() - start)
    assert count == len(chips)
    return rate


def stitch_back(chips, predictions: list[np.ndarray], out: Path) -> float:
    """Chips per second writing the identity predictions back into a GeoTIFF."""
    from geovision.data.stitching import stitch

    out.unlink(missing_ok=True)
    start = time.perf_counter()
    stitch(zip(chips.index, predictions, strict=True), chips, out, progress=False)
    return len(chips) / (time.perf_counter() - start)


def torchgeo_rate(folder: Path) -> tuple[float | None, str]:
    """torchgeo's best chips per second (None if it cannot run) and what happened."""
    python = VENV / "bin" / "python"
    if not python.exists():
        print(f"creating torchgeo's virtualenv in {VENV} (once)", flush=True)
        try:
            subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True,
                           capture_output=True, text=True)
            subprocess.run([str(python), "-m", "pip", "install", "-q", *TORCHGEO_PACKAGES],
                           check=True, capture_output=True, text=True, timeout=1800)
        except (subprocess.SubprocessError, OSError) as exc:
            shutil.rmtree(VENV, ignore_errors=True)
            detail = getattr(exc, "stderr", "") or str(exc)
            return None, f"cannot create the torchgeo virtualenv: {detail.strip()[-500:]}"
    stride = CHIP - OVERLAP
    command = [str(python), "-I", str(TORCHGEO_SCRIPT), str(folder), str(CHIP), str(stride),
               str(BATCH), str(TORCHGEO_REPEATS), *(str(w) for w in WORKER_COUNTS)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=1200, env=env,
                                cwd=folder)
    except subprocess.TimeoutExpired:
        return None, "the torchgeo run took over 20 minutes"
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines or not lines[-1].startswith("CHIPS_PER_S"):
        return None, f"the torchgeo run failed: {result.stderr.strip()[-800:]}"
    for line in lines[:-1]:
        print(line, flush=True)
    fields = lines[-1].split()
    return float(fields[1]), " ".join(fields[2:])


def main() -> None:
    import rasterio

    from geovision.data.tiling import ChipDataset, chip_index

    tmp = Path(tempfile.mkdtemp(prefix="geovision-bench-tiling-"))
    try:
        folder = tmp / "scene"
        folder.mkdir()
        scene = folder / "scene.tif"
        make_scene(scene)
        chips = chip_index([scene], CHIP, OVERLAP, border="pad", progress=False)
        windows = chips[["row_off", "col_off", "height", "width"]].to_numpy()
        print(f"scene {SIZE} x {SIZE} x {BANDS} uint8, 256 px tiles, uncompressed; "
              f"{len(chips)} chips of {CHIP} px, overlap {OVERLAP}, batch {BATCH}", flush=True)

        floor, ours, stitched = [], {w: [] for w in WORKER_COUNTS}, []
        reader = ChipDataset(chips)
        predictions = [reader.read_raw(i)[0] for i in range(len(chips))]
        reader.close()
        for repeat in range(REPEATS):  # interleaved, so no contender always runs on a quieter CPU
            floor.append(windowed_reads(scene, windows))
            for workers in WORKER_COUNTS:
                ours[workers].append(chip_dataset(chips, workers))
            stitched.append(stitch_back(chips, predictions, tmp / f"stitched-{repeat}.tif"))
        with rasterio.open(scene) as a, rasterio.open(tmp / "stitched-0.tif") as b:
            assert np.array_equal(a.read(), b.read()), "stitched scene differs from the source"
            assert (a.crs, a.transform) == (b.crs, b.transform)
        floor_rate = max(floor)
        rates = {w: max(r) for w, r in ours.items()}
        best_workers = max(rates, key=rates.get)
        ours_rate, stitch_rate = rates[best_workers], max(stitched)
        print(f"windowed reads: {floor_rate:.0f} chips/s", flush=True)
        print("ChipDataset: " + ", ".join(f"{w} workers {r:.0f}/s" for w, r in rates.items())
              + f" (best: {best_workers} workers)", flush=True)
        print(f"stitch (mean blend, GeoTIFF, equal to the source): {stitch_rate:.0f} chips/s",
              flush=True)

        torchgeo, detail = torchgeo_rate(folder)
        if torchgeo is None:
            print(f"torchgeo baseline unavailable, ratio not reported: {detail}", flush=True)
        else:
            print(f"torchgeo: {torchgeo:.0f} chips/s ({detail})", flush=True)
            bench_line("tiling_chips_vs_torchgeo", ours_rate, "chips/s",
                       "torchgeo_gridgeosampler", torchgeo, GOAL_TORCHGEO)
        bench_line("tiling_chips_vs_windowed_reads", ours_rate, "chips/s",
                   "rasterio_windowed_reads", floor_rate, GOAL_FLOOR)
        bench_line("tiling_stitch_vs_windowed_reads", stitch_rate, "chips/s",
                   "rasterio_windowed_reads", floor_rate, GOAL_STITCH)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
