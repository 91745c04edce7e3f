"""Shared plotting helpers: headless matplotlib, atomic PNG writes, RGB composites."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from geovision.data.transforms import percentile_stretch  # noqa: E402
from geovision.io.atomic import atomic_file  # noqa: E402

RGB_NAMES = ("red", "green", "blue")


def save_figure(fig: plt.Figure, path: Path, dpi: int = 110) -> Path:
    with atomic_file(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return Path(path)


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
