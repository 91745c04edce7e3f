"""Default transforms: scaling by dtype, normalisation, one-hot masks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from geovision.data.transforms import OneHot, ScaleNormalize, percentile_stretch


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.float32, np.float64])
def test_scale_normalize_matches_the_formula(dtype):
    rng = np.random.default_rng(0)
    info = np.iinfo(dtype) if np.issubdtype(dtype, np.integer) else None
    image = (rng.integers(0, info.max, (3, 5, 7)) if info else rng.random((3, 5, 7))).astype(dtype)
    means, stds = (0.1, 0.5, 0.9), (0.2, 0.3, 0.4)
    out = ScaleNormalize(means, stds)(image)
    divisor = info.max if info else 1.0
    expected = (image.astype(np.float64) / divisor - np.array(means)[:, None, None]) / np.array(
        stds)[:, None, None]
    assert out.dtype == torch.float32 and out.shape == (3, 5, 7)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-5, atol=1e-5)
    before = image.copy()
    ScaleNormalize(means, stds)(image)
    np.testing.assert_array_equal(image, before)  # the input is never modified


def test_scale_normalize_accepts_read_only_arrays():
    image = np.full((1, 2, 2), 255, dtype=np.uint8)
    image.flags.writeable = False
    assert torch.allclose(ScaleNormalize([0.0], [1.0])(image), torch.ones(1, 2, 2))


def test_one_hot_with_ignore_index():
    mask = np.array([[0, 1], [255, 2]], dtype=np.uint8)
    out = OneHot(3, ignore_index=255)(mask)
    assert out.shape == (3, 2, 2)
    assert out[:, 1, 0].sum() == 0  # ignored pixel belongs to no class
    assert out[1, 0, 1] == 1 and out[2, 1, 1] == 1
    with pytest.raises(ValueError, match="outside 0..2"):
        OneHot(3)(np.array([[3]], dtype=np.uint8))


def test_percentile_stretch_spans_unit_range():
    image = np.arange(100, dtype=np.uint16).reshape(1, 10, 10) * 500
    out = percentile_stretch(image)
    assert out.min() == 0.0 and out.max() == 1.0 and out.dtype == np.float32
