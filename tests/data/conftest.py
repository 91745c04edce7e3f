"""Small synthetic datasets for the statistics and shard tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from geovision.data.datasets.synthetic import generate


@pytest.fixture(scope="session")
def small_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 synthetic scenes of 32 x 32 pixels, shared read-only by every test."""
    return generate(tmp_path_factory.mktemp("small") / "synthetic", num_scenes=40, size=32,
                    progress=False)


@pytest.fixture()
def small_copy(small_root: Path, tmp_path: Path) -> Path:
    """A private copy of the small dataset that a test may damage."""
    return Path(shutil.copytree(small_root, tmp_path / "synthetic"))


@pytest.fixture()
def truncate():
    """Cut a file to a third of its bytes, as an interrupted download would."""
    def cut(path: Path) -> None:
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])
    return cut


@pytest.fixture()
def write_three_band():
    """Overwrite an image with a valid 3-band GeoTIFF (the dataset expects 4 bands)."""
    import numpy as np
    import rasterio
    from rasterio.transform import from_origin

    def write(path: Path) -> None:
        with rasterio.open(path, "w", driver="GTiff", height=32, width=32, count=3,
                           dtype="uint8", crs="EPSG:32633",
                           transform=from_origin(0, 0, 10, 10)) as dst:
            dst.write(np.zeros((3, 32, 32), dtype=np.uint8))
    return write
