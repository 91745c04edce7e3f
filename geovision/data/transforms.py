"""Default sample transforms: picklable classes, so DataLoader workers can receive them."""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch

from geovision.errors import DataError


def unit_scale(dtype: np.dtype, scale: float | None = None) -> float:
    """The divisor that maps stored values to [0, 1]: `scale` if given, else the integer dtype's
    maximum, else 1 for floats."""
    if scale is not None:
        return float(scale)
    dtype = np.dtype(dtype)
    if np.issubdtype(dtype, np.integer):
        return float(np.iinfo(dtype).max)
    return 1.0


class ScaleNormalize:
    """(C, H, W) array in its stored dtype -> float32 tensor scaled to [0, 1], then
    standardised per band with the dataset's MEANS and STD_DEVS.

    Computed as `x * gain + offset` per band (gain = 1 / (scale * std), offset = -mean / std):
    two passes over the output instead of four, and the same arithmetic for a sample and for
    a batch, so both give identical tensors.
    """

    def __init__(self, means: Sequence[float], std_devs: Sequence[float],
                 scale: float | None = None) -> None:
        self.means = torch.tensor(means, dtype=torch.float64).view(-1, 1, 1)
        self.std_devs = torch.tensor(std_devs, dtype=torch.float64).view(-1, 1, 1)
        self.scale = scale

    def _gain_offset(self, dtype: np.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        gain = 1.0 / (unit_scale(dtype, self.scale) * self.std_devs)
        return gain.to(torch.float32), (-self.means / self.std_devs).to(torch.float32)

    @staticmethod
    def _standardise(image: np.ndarray, gain: torch.Tensor, offset: torch.Tensor,
                     out: torch.Tensor) -> torch.Tensor:
        """`image` * gain + offset into `out`; call it within `_read_only_inputs()`."""
        # A converting copy, then two float passes in place: a multiply that converts as it
        # goes (torch.mul(uint8, float32, out=)) is slower than the three (bench/loaders.py).
        out.copy_(torch.from_numpy(np.ascontiguousarray(image)))
        return out.mul_(gain).add_(offset)

    def __call__(self, image: np.ndarray) -> torch.Tensor:
        out = torch.empty(image.shape, dtype=torch.float32)  # the input is never modified
        with _read_only_inputs():
            return self._standardise(image, *self._gain_offset(image.dtype), out)

    def batch(self, images: np.ndarray | Sequence[np.ndarray]) -> torch.Tensor:
        """The same for a batch ((B, C, H, W), or B images of one shape and dtype), written
        straight into one batch tensor: each image is standardised in its own slot while it
        is still in cache, and no per-sample tensors are stacked afterwards."""
        first = images[0]
        gain, offset = self._gain_offset(first.dtype)
        out = torch.empty((len(images), *first.shape), dtype=torch.float32)
        with _read_only_inputs():
            for slot, image in zip(out, images, strict=True):
                self._standardise(image, gain, offset, slot)
        return out


@contextmanager
def _read_only_inputs() -> Iterator[None]:
    """Let torch wrap read-only arrays (views of mapped shards) without its warning: the
    standardisation only reads them, and a copy would cost as much as the conversion."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        yield


class OneHot:
    """(H, W) index mask -> (num_classes, H, W) float32 one-hot; `ignore_index` pixels get all
    zeros, so they contribute to no class."""

    def __init__(self, num_classes: int, ignore_index: int | None = None) -> None:
        self.num_classes = num_classes
        self.ignore_index = ignore_index

    def __call__(self, mask: np.ndarray) -> torch.Tensor:
        index = torch.from_numpy(mask.astype(np.int64))
        valid = torch.ones_like(index, dtype=torch.bool)
        if self.ignore_index is not None:
            valid = index != self.ignore_index
        if bool(((index < 0) | (index >= self.num_classes))[valid].any()):
            bad = sorted(set(index[valid].unique().tolist()) - set(range(self.num_classes)))
            raise DataError(f"Mask holds class indices {bad} outside 0..{self.num_classes - 1}; "
                            "check the dataset's label encoding or set its IGNORE_INDEX.")
        one_hot = torch.zeros((self.num_classes, *index.shape), dtype=torch.float32)
        one_hot.scatter_(0, torch.where(valid, index, 0).unsqueeze(0), valid.unsqueeze(0).float())
        return one_hot


def percentile_stretch(array: np.ndarray, low: float = 2.0, high: float = 98.0) -> np.ndarray:
    """(C, H, W) values -> float32 in [0, 1], each band stretched from its `low` to its `high`
    percentile: the usual display stretch for imagery of any dtype."""
    values = np.asarray(array, dtype=np.float32)
    lo = np.percentile(values, low, axis=(1, 2), keepdims=True)
    hi = np.percentile(values, high, axis=(1, 2), keepdims=True)
    return np.clip((values - lo) / np.maximum(hi - lo, 1e-6), 0.0, 1.0)
