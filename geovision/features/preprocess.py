"""Images in, detector input out: BGR, caffe mean subtracted, short side 600, long side <= 1000.

Decoding happens on the CPU (`load_rgb`); resizing and normalisation run on the detector's
device (`preprocess_batch`), so a GPU is not kept waiting on CPU arithmetic.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from geovision.data.image_io import read_image
from geovision.data.transforms import percentile_stretch
from geovision.errors import DataError
from geovision.features.config import DetectorConfig


def to_rgb_uint8(array: np.ndarray, bands: tuple[int, int, int] | None = None) -> np.ndarray:
    """(C, H, W) image of any band count and dtype -> (H, W, 3) uint8 RGB.

    One band is repeated; otherwise `bands` (default: the first three) are taken. Non-uint8
    data (16-bit, float reflectance) is stretched per band from its 2nd to 98th percentile,
    the usual display stretch, since the detector was trained on 8-bit photographs.
    """
    if array.ndim != 3:
        raise ValueError(f"Expected a (C, H, W) image, got shape {array.shape}.")
    channels = array.shape[0]
    if bands is None:
        bands = (0, 0, 0) if channels == 1 else (0, 1, 2)
    if channels < 3 and channels != 1:
        raise DataError(f"Image has {channels} bands; region features need 1 or at least 3.")
    if max(bands) >= channels:
        raise DataError(f"RGB bands {bands} requested but the image has {channels} bands.")
    rgb = array[list(bands)]
    if rgb.dtype != np.uint8:
        rgb = np.rint(percentile_stretch(rgb) * 255.0).astype(np.uint8)
    return np.ascontiguousarray(rgb.transpose(1, 2, 0))


def load_rgb(path: str | os.PathLike,
             bands: tuple[int, int, int] | None = None) -> torch.Tensor:
    """Read an image file as an (H, W, 3) uint8 RGB tensor; errors name the file."""
    path = Path(path)
    array = read_image(path)
    try:
        return torch.from_numpy(to_rgb_uint8(array, bands))
    except ValueError as exc:
        raise DataError(f"{path}: {exc}") from exc


def resized_shape(height: int, width: int, min_size: int, max_size: int) -> tuple[int, int]:
    """Scale so the short side is `min_size` unless the long side would pass `max_size`.

    The arithmetic is detectron2's ResizeShortestEdge step for step, in float64: the short
    side is set to `min_size` and the long one scaled; if that passes `max_size`, both are
    rescaled by max_size / long side; only then is each rounded with int(x + 0.5). Scaling
    once by a combined factor instead lands 16:9 images (360x640, 720x1280, ...) on 563x1000
    where detectron2 and the Caffe extractor give 562x1000, and every feature then differs.
    """
    scale = min_size / min(height, width)
    if height < width:
        new_h, new_w = float(min_size), scale * width
    else:
        new_h, new_w = scale * height, float(min_size)
    if max(new_h, new_w) > max_size:
        scale = max_size / max(new_h, new_w)
        new_h, new_w = new_h * scale, new_w * scale
    return int(new_h + 0.5), int(new_w + 0.5)


def preprocess_batch(images: list[torch.Tensor], config: DetectorConfig,
                     device: torch.device | str = "cpu"
                     ) -> tuple[torch.Tensor, list[tuple[int, int]]]:
    """(H, W, 3) uint8 RGB images -> a zero-padded (B, 3, H, W) float batch and each image's
    resized (h, w). Zero padding equals the mean colour after mean subtraction."""
    mean = torch.tensor(config.pixel_mean, device=device).view(3, 1, 1)
    resized, sizes = [], []
    for image in images:
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"Expected an (H, W, 3) RGB image, got shape {tuple(image.shape)}.")
        h, w = int(image.shape[0]), int(image.shape[1])
        new_h, new_w = resized_shape(h, w, config.min_size, config.max_size)
        bgr = image.to(device, non_blocking=True).permute(2, 0, 1).flip(0).float()
        if (new_h, new_w) != (h, w):
            bgr = F.interpolate(bgr[None], size=(new_h, new_w), mode="bilinear",
                                align_corners=False)[0]
        resized.append(bgr - mean)
        sizes.append((new_h, new_w))
    height = max(s[0] for s in sizes)
    width = max(s[1] for s in sizes)
    batch = torch.zeros((len(images), 3, height, width), device=device)
    for i, image in enumerate(resized):
        batch[i, :, : image.shape[1], : image.shape[2]] = image
    return batch, sizes
