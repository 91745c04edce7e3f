"""Plotting helpers of the analysis layer: RGB composites (figures are saved by
`geovision.io.figures`, re-exported here)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from geovision.data.transforms import percentile_stretch
from geovision.io.figures import plt, save_figure

__all__ = ["RGB_NAMES", "plt", "rgb_composite", "save_figure"]
RGB_NAMES = ("red", "green", "blue")


def rgb_composite(image: np.ndarray, bands: Sequence[str]) -> np.ndarray:
    """(C, H, W) image -> (H, W, 3) in [0, 1] for display: the red, green and blue bands when
    the dataset has them, else the first three (or one grey band), each stretched to its
    2nd-98th percentile."""
    names = [b.lower() for b in bands]
    if all(n in names for n in RGB_NAMES):
        picks = [names.index(n) for n in RGB_NAMES]
    else:
        picks = list(range(min(3, image.shape[0])))
    rgb = percentile_stretch(np.asarray(image)[picks])
    if rgb.shape[0] == 1:
        rgb = np.repeat(rgb, 3, axis=0)
    return rgb.transpose(1, 2, 0)
