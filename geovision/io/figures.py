"""Headless matplotlib and atomic PNG writes, for every layer that draws figures."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from geovision.io.atomic import atomic_file  # noqa: E402

__all__ = ["plt", "save_figure"]


def save_figure(fig: plt.Figure, path: Path, dpi: int = 110) -> Path:
    with atomic_file(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return Path(path)
