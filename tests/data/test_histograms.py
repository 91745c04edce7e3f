"""The compiled per-band counts equal numpy's bincount for every supported dtype."""

from __future__ import annotations

import numpy as np
import pytest

from geovision.data.histograms import band_counts, load_kernels


def reference_counts(pixels: np.ndarray) -> np.ndarray:
    lo = int(np.iinfo(pixels.dtype).min)
    num_values = 1 << (8 * pixels.dtype.itemsize)
    return np.stack([np.bincount(row.astype(np.int64) - lo, minlength=num_values)
                     for row in pixels])


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.uint16, np.int16])
@pytest.mark.parametrize("length", [1, 7, 8, 1001, 65536])
def test_counts_equal_bincount(dtype: type, length: int) -> None:
    info = np.iinfo(dtype)
    rng = np.random.default_rng(length)
    pixels = rng.integers(info.min, info.max, (3, length), endpoint=True).astype(dtype)
    pixels[0, 0], pixels[1, -1] = info.min, info.max  # both ends of the range
    pixels[2, : length // 2] = 5  # a long run of one value
    counts = band_counts(pixels)
    assert counts.dtype == np.int64
    np.testing.assert_array_equal(counts, reference_counts(pixels))


def test_non_contiguous_rows() -> None:
    image = np.random.default_rng(0).integers(0, 256, (4, 64, 64), dtype=np.uint8)
    pixels = image[:, ::2, 1::3].reshape(4, -1)  # a copy-free view would be strided
    np.testing.assert_array_equal(band_counts(image[::2].reshape(2, -1)),
                                  reference_counts(image[::2].reshape(2, -1)))
    np.testing.assert_array_equal(band_counts(pixels), reference_counts(pixels))


@pytest.mark.parametrize("pixels", [np.zeros((2, 4), np.float32), np.zeros((2, 4), np.int32),
                                    np.zeros(4, np.uint8)])
def test_refuses_what_it_cannot_count(pixels: np.ndarray) -> None:
    with pytest.raises(TypeError, match="8- or 16-bit integer"):
        band_counts(pixels)


def test_load_kernels_is_idempotent() -> None:
    load_kernels()
    load_kernels()
    np.testing.assert_array_equal(band_counts(np.array([[0, 255, 255]], np.uint8))[0, [0, 255]],
                                  [1, 2])
