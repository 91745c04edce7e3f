"""A generated scene in the analysis-ready scene layout, for demos, tests and benchmarks
when no satellite provider is configured.

Written in blocks of rows, so a 20000 x 20000 scene never sits in memory: each band is a
smooth pattern of the synthetic dataset's land-cover signatures plus noise, tagged as the
scene contract asks (band descriptions = names, `wavelength_nm` per band, `provider`,
`scene_key` and `acquired` on the dataset).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from geovision.inference.bands import band_wavelength
from geovision.io.atomic import atomic_file

BLOCK_ROWS = 512
PIXEL_SIZE_M = 10.0


def write_generated_scene(path: str | os.PathLike, size: int | tuple[int, int],
                          bands: Sequence[str] = ("red", "green", "blue", "nir"),
                          dtype: str = "float32", seed: int = 0, key: str = "generated",
                          compress: str | None = "deflate", tile: int = 512,
                          noise: float = 0.02) -> Path:
    """A (len(bands), H, W) tiled GeoTIFF at `path` (EPSG:32633, 10 m pixels); float dtypes
    hold reflectance in [0, 1], integer ones the same scaled to the dtype's range; `noise`
    is the standard deviation of the reflectance noise (0: the land covers alone, fastest)."""
    import rasterio
    from affine import Affine

    from geovision.data.datasets.synthetic import BANDS as SYNTHETIC_BANDS
    from geovision.data.datasets.synthetic import SIGNATURES

    height, width = (size, size) if isinstance(size, int) else size
    rng = np.random.default_rng(seed)
    cover_of = {b: SYNTHETIC_BANDS.index(b) if b in SYNTHETIC_BANDS else i % 4
                for i, b in enumerate(bands)}
    signatures = SIGNATURES[:, [cover_of[b] for b in bands]] / 255.0  # (covers, bands)
    integer = np.issubdtype(np.dtype(dtype), np.integer)
    top = np.iinfo(dtype).max if integer else 1.0
    table = signatures.T * top  # (bands, covers) stored values
    table = table.round().astype(dtype) if integer else table.astype(dtype)
    profile = {"driver": "GTiff", "height": height, "width": width, "count": len(bands),
               "dtype": dtype, "crs": "EPSG:32633", "tiled": True, "blockxsize": tile,
               "blockysize": tile,
               "transform": Affine.translation(500_000, 5_000_000)
               @ Affine.scale(PIXEL_SIZE_M, -PIXEL_SIZE_M)}
    if compress:
        profile["compress"] = compress
    cols = np.arange(width)
    with atomic_file(Path(path)) as tmp:
        tmp.unlink(missing_ok=True)
        with rasterio.open(tmp, "w", **profile) as dst:
            for row in range(0, height, BLOCK_ROWS):
                rows = np.arange(row, min(row + BLOCK_ROWS, height))
                # land cover: stripes and blobs that cross block and chip borders
                cover = ((rows[:, None] // 97 + cols[None, :] // 131) % len(signatures))
                if noise == 0:
                    block = table[:, cover]
                else:
                    values = signatures[cover].transpose(2, 0, 1)
                    values = values + rng.normal(0, noise, size=(1, *values.shape[1:]))
                    values = np.clip(values, 0, 1) * top
                    block = values.round().astype(dtype) if integer else values.astype(dtype)
                dst.write(block, window=rasterio.windows.Window(0, row, width, len(rows)))
            dst.descriptions = tuple(bands)
            for i, band in enumerate(bands, start=1):
                wave = band_wavelength(band)
                if wave is not None:
                    dst.update_tags(i, wavelength_nm=str(wave))
            dst.update_tags(provider="generated", scene_key=key,
                            acquired="2026-01-01T00:00:00Z")
    return Path(path)
