"""The compiled histograms equal numpy's bincount, and their summaries the exact moments, for
every supported dtype."""

from __future__ import annotations

import numpy as np
import pytest

from geovision.data.histograms import (
    HIGH,
    LOW,
    NUMBER,
    TOTAL,
    TOTAL_SQ,
    _summaries_8bit,
    band_summaries,
    band_summariser,
    load_kernels,
)


def reference_counts(pixels: np.ndarray, bin_width: int = 1) -> np.ndarray:
    lo = int(np.iinfo(pixels.dtype).min)
    num_values = 1 << (8 * pixels.dtype.itemsize)
    return np.stack([np.bincount((row.astype(np.int64) - lo) // bin_width,
                                 minlength=num_values // bin_width) for row in pixels])


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.uint16, np.int16])
@pytest.mark.parametrize("length", [1, 7, 8, 1001, 65536])
def test_counts_equal_bincount(dtype: type, length: int) -> None:
    info = np.iinfo(dtype)
    rng = np.random.default_rng(length)
    pixels = rng.integers(info.min, info.max, (3, length), endpoint=True).astype(dtype)
    pixels[0, 0], pixels[1, -1] = info.min, info.max  # both ends of the range
    pixels[2, : length // 2] = 5  # a long run of one value
    hist, _ = band_summaries(pixels)
    assert hist.dtype == np.int64
    np.testing.assert_array_equal(hist, reference_counts(pixels))


@pytest.mark.parametrize("dtype", [np.uint16, np.int16])
@pytest.mark.parametrize("bin_width", [2, 64, 65536])
def test_16bit_counts_into_bins(dtype: type, bin_width: int) -> None:
    info = np.iinfo(dtype)
    pixels = np.random.default_rng(bin_width).integers(
        info.min, info.max, (2, 3000), endpoint=True).astype(dtype)
    pixels[1, :1000] = info.min
    hist, _ = band_summaries(pixels, bin_width)
    np.testing.assert_array_equal(hist, reference_counts(pixels, bin_width))


@pytest.mark.parametrize("block", [8, 13, 1000])
def test_8bit_counts_added_up_block_by_block(block: int) -> None:
    """Bands longer than a block (2**32 pixels, where an int32 lane could overflow) are
    counted a block at a time and added up: the same counts for any block size."""
    pixels = np.random.default_rng(block).integers(0, 256, (2, 1001), dtype=np.uint8)
    pixels[1, :600] = 9
    hist = np.full((2, 256), -1, np.int64)
    summary = np.empty((2, 5), np.int64)
    _summaries_8bit(pixels, 0, 0, -1, block, hist, summary)
    np.testing.assert_array_equal(hist, reference_counts(pixels))
    assert summary[:, NUMBER].tolist() == [1001, 1001]


def test_non_contiguous_rows() -> None:
    image = np.random.default_rng(0).integers(0, 256, (4, 64, 64), dtype=np.uint8)
    pixels = image[:, ::2, 1::3].reshape(4, -1)  # a copy-free view would be strided
    every_other = image[::2].reshape(2, -1)
    np.testing.assert_array_equal(band_summaries(every_other)[0], reference_counts(every_other))
    np.testing.assert_array_equal(band_summaries(pixels)[0], reference_counts(pixels))
    hist, summary = np.empty((2, 256), np.int64), np.empty((2, 5), np.int64)
    band_summariser(np.uint8)(every_other, hist, summary)  # strided rows, unchecked path
    np.testing.assert_array_equal(hist, reference_counts(every_other))


@pytest.mark.parametrize("pixels", [np.zeros((2, 4), np.float32), np.zeros((2, 4), np.int32),
                                    np.zeros(4, np.uint8)])
def test_refuses_what_it_cannot_count(pixels: np.ndarray) -> None:
    with pytest.raises(TypeError, match="8- or 16-bit integer"):
        band_summaries(pixels)


@pytest.mark.parametrize(("dtype", "bin_width", "skip", "match"), [
    (np.uint8, 2, None, "bin_width=2"), (np.uint16, 3, None, "power of two"),
    (np.uint16, 1 << 17, None, "power of two"), (np.uint8, 1, 256, "skip=256"),
    (np.int16, 1, -40000, "not a value of int16")])
def test_refuses_bad_bins_and_skip(dtype: type, bin_width: int, skip, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        band_summariser(dtype, bin_width, skip)


def test_load_kernels_is_idempotent() -> None:
    load_kernels()
    load_kernels()
    hist, _ = band_summaries(np.array([[0, 255, 255]], np.uint8))
    np.testing.assert_array_equal(hist[0, [0, 255]], [1, 2])


@pytest.mark.parametrize(("dtype", "bin_width"), [
    (np.uint8, 1), (np.int8, 1), (np.uint16, 1), (np.int16, 1), (np.uint16, 16),
    (np.int16, 16)])
def test_summaries_are_exact(dtype: type, bin_width: int) -> None:
    info = np.iinfo(dtype)
    rng = np.random.default_rng(1)
    pixels = rng.integers(info.min, info.max, (3, 5000), endpoint=True).astype(dtype)
    pixels[1] = info.max  # every pixel is the nodata value below: an empty band
    pixels[2, :100] = info.max
    skip, lo = int(info.max), int(info.min)
    hist, summary = band_summaries(pixels, bin_width, skip)
    for band, row in enumerate(pixels.astype(object)):  # Python ints: exact reference
        kept = [int(v) for v in row if v != skip]
        assert summary[band, NUMBER] == len(kept) == hist[band].sum()
        assert summary[band, TOTAL] == sum(kept)
        assert summary[band, TOTAL_SQ] == sum(v * v for v in kept)
        if kept:
            assert summary[band, LOW] + lo == min(kept)
            assert summary[band, HIGH] + lo == max(kept)
        else:
            assert summary[band, LOW] == summary[band, HIGH] == -1
