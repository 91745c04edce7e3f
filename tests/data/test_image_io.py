"""Pixel reads of GeoTIFFs skip georeferencing but return exactly the stored values."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.crs import CRS
from rasterio.transform import from_origin

from geovision.data.image_io import read_image, read_mask


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "int16", "float32"])
@pytest.mark.parametrize("interleave", ["pixel", "band"])
def test_geotiff_pixels_equal_a_full_open(tmp_path: Path, dtype: str, interleave: str) -> None:
    rng = np.random.default_rng(0)
    pixels = (rng.random((3, 40, 24)) * 1000).astype(dtype)
    path = tmp_path / "scene.tif"
    with rasterio.open(path, "w", driver="GTiff", width=24, height=40, count=3, dtype=dtype,
                       crs=CRS.from_epsg(32633), transform=from_origin(5e5, 5e6, 10, 10),
                       interleave=interleave) as dst:
        dst.write(pixels)
    with rasterio.open(path) as src:
        assert src.crs == CRS.from_epsg(32633)  # the file is georeferenced
        expected = src.read()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no NotGeoreferencedWarning for the skipped georef
        image, mask = read_image(path, expected_bands=3), read_mask(path)
    for array in (image, mask):
        assert array.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(array, expected)
        np.testing.assert_array_equal(array, pixels)
