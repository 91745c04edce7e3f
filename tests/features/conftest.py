"""Small images in real formats, a tiny detector and one shared extraction."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from geovision.features.arrow_io import make_record
from geovision.features.config import DetectorConfig

NUM_OBJECTS = 10


def _scene(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """(H, W, 3) uint8: a textured background with a few solid rectangles."""
    image = rng.integers(60, 120, size=(height, width, 3)).astype(np.uint8)
    for _ in range(4):
        y0, x0 = rng.integers(0, height - 8), rng.integers(0, width - 8)
        h, w = rng.integers(6, height // 2), rng.integers(6, width // 2)
        image[y0:y0 + h, x0:x0 + w] = rng.integers(0, 256, size=3)
    return image


@pytest.fixture(scope="session")
def image_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four images of different sizes and formats: a COCO-style PNG name, a JPEG, a
    greyscale PNG and a 4-band 16-bit GeoTIFF."""
    import rasterio
    from affine import Affine
    from PIL import Image

    folder = tmp_path_factory.mktemp("region_images")
    rng = np.random.default_rng(7)
    Image.fromarray(_scene(rng, 64, 64)).save(folder / "000000000139.png")
    Image.fromarray(_scene(rng, 48, 80)).save(folder / "street.jpg", quality=95)
    Image.fromarray(_scene(rng, 70, 50)[..., 0]).save(folder / "gray.png")
    bands = (_scene(rng, 64, 64).transpose(2, 0, 1).astype(np.uint16) * 40)
    bands = np.concatenate([bands, bands[:1]], axis=0)
    with rasterio.open(folder / "tile.tif", "w", driver="GTiff", height=64, width=64, count=4,
                       dtype="uint16", crs="EPSG:32633",
                       transform=Affine(10, 0, 500000, 0, -10, 4000000)) as dst:
        dst.write(bands)
    (folder / "notes.txt").write_text("not an image")
    return folder


@pytest.fixture(scope="session")
def extracted(image_folder: Path, tmp_path_factory: pytest.TempPathFactory):
    """One extraction of `image_folder` with the tiny random detector, shared read-only."""
    from geovision.features.extract import extract_region_features

    out = tmp_path_factory.mktemp("region_out") / "features"
    return extract_region_features(image_folder, out, num_objects=NUM_OBJECTS,
                                   config=DetectorConfig.tiny(), batch_size=2, progress=False)


@pytest.fixture()
def make_records() -> Callable[..., list[dict]]:
    """Random rows as extraction writes them: `num_boxes` real regions each, padded."""
    def build(num_boxes: list[int], num_objects: int, feature_dim: int, seed: int = 0,
              prefix: str = "img") -> list[dict]:
        rng = np.random.default_rng(seed)
        rows = []
        for i, n in enumerate(num_boxes):
            h, w = int(rng.integers(20, 90)), int(rng.integers(20, 90))
            xy = rng.uniform(0, 1, size=(n, 2)) * [w, h]
            wh = rng.uniform(1, 30, size=(n, 2))
            boxes = np.concatenate([xy, np.minimum(xy + wh, [w, h])], axis=1)
            rows.append(make_record(
                f"{prefix}{i}", h, w, rng.integers(0, 1600, n), rng.uniform(0, 1, n),
                rng.integers(0, 400, n), rng.uniform(0, 1, n), boxes,
                rng.normal(size=(n, feature_dim)), num_objects))
        return rows
    return build
