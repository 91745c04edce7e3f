"""The compiled per-band counts equal numpy's bincount for every supported dtype."""

from __future__ import annotations

import numpy as np
import pytest

from geovision.data.histograms import _counts_8bit, band_counts, load_kernels, summarise_counts


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


@pytest.mark.parametrize("block", [8, 13, 1000])
def test_8bit_counts_added_up_block_by_block(block: int) -> None:
    """Bands longer than a block (2**32 pixels, where an int32 lane could overflow) are
    counted a block at a time and added up: the same counts for any block size."""
    pixels = np.random.default_rng(block).integers(0, 256, (2, 1001), dtype=np.uint8)
    pixels[1, :600] = 9
    out = np.full((2, 256), -1, np.int64)
    _counts_8bit(pixels, out, block)
    np.testing.assert_array_equal(out, reference_counts(pixels))


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


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.uint16, np.int16])
def test_summaries_are_exact(dtype: type) -> None:
    info = np.iinfo(dtype)
    rng = np.random.default_rng(1)
    pixels = rng.integers(info.min, info.max, (3, 5000), endpoint=True).astype(dtype)
    pixels[1] = info.max  # every pixel is the nodata value below: an empty band
    skip, lo = int(info.max), int(info.min)
    counts = band_counts(pixels)
    summary = summarise_counts(counts, lo, skip)
    for band, row in enumerate(pixels.astype(object)):  # Python ints: exact reference
        kept = [int(v) for v in row if v != skip]
        assert summary.number[band] == len(kept)
        assert summary.total[band] == sum(kept)
        assert summary.total_sq[band] == sum(v * v for v in kept)
        if kept:
            assert summary.low[band] + lo == min(kept)
            assert summary.high[band] + lo == max(kept)
        else:
            assert summary.low[band] == summary.high[band] == -1
    assert counts[:, skip - lo].sum() == 0  # zeroed in place


def test_counts_into_out_and_bad_out() -> None:
    pixels = np.array([[1, 2, 2], [0, 0, 255]], np.uint8)
    out = np.full((2, 256), 7, np.int64)  # overwritten, not added to
    assert band_counts(pixels, out=out) is out
    np.testing.assert_array_equal(out, reference_counts(pixels))
    with pytest.raises(ValueError, match="C-contiguous int64 array of shape"):
        band_counts(pixels, out=np.zeros((2, 256), np.int32))
    with pytest.raises(ValueError, match="C-contiguous .rows, values. int64"):
        summarise_counts(np.zeros((2, 256), np.int32), 0)
