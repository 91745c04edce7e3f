"""The built-in `synthetic` dataset: multispectral scenes generated from a seed, no download.

It is written to disk in a real layout (4-band GeoTIFF images, single-band PNG masks, a labels
table) so it goes through the same loading code as a downloaded dataset:

    <root>/images/scene_0000.tif   R, G, B, NIR uint8, EPSG:32633, 10 m pixels
    <root>/masks/scene_0000.png    class indices (background, building, road, water, vegetation)
    <root>/labels.csv              scene_id, dominant_class
    <root>/generator.json          the settings the files were generated with

Each scene's class is its dominant land cover (the foreground class covering most pixels), so
both classification and segmentation are learnable.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from geovision.data.base import LABEL_SEPARATOR, GeoDataset
from geovision.data.splits import SplitSettings, stratified_splits
from geovision.errors import MissingDataError
from geovision.io.atomic import atomic_dir

GENERATOR_VERSION = 1
SEG_CLASSES = ("background", "building", "road", "water", "vegetation")
SCENE_CLASSES = SEG_CLASSES[1:]
BANDS = ("red", "green", "blue", "nir")
# Mean reflectance of each surface in R, G, B, NIR (uint8 units): distinct in NIR and visible.
SIGNATURES = np.array([
    (150, 120, 90, 110),   # bare soil background
    (205, 195, 185, 120),  # building roofs
    (95, 95, 100, 70),     # asphalt road
    (30, 60, 95, 12),      # water
    (50, 125, 45, 205),    # vegetation
], dtype=np.float64)
NOISE_STD = 30.0
PIXEL_SIZE_M = 10.0


def generate_scene(random_seed: int, index: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """One scene: (4, size, size) uint8 image and (size, size) uint8 mask, from (seed, index).

    The scene's theme (index % 4) gets most of the area; the others appear in small amounts.
    """
    rng = np.random.default_rng([random_seed, index])
    theme = 1 + index % len(SCENE_CLASSES)
    mask = np.zeros((size, size), dtype=np.uint8)
    yy, xx = np.mgrid[0:size, 0:size]
    # Draw order lets roads cross fields and buildings sit on top of everything.
    for cls in (4, 3, 2, 1):
        amount = int(rng.integers(3, 6)) if cls == theme else int(rng.integers(0, 3))
        for _ in range(amount):
            _draw_shape(mask, cls, rng, yy, xx, size, big=cls == theme)
    base = SIGNATURES[mask].transpose(2, 0, 1)
    noise = rng.normal(0.0, NOISE_STD, size=base.shape)
    image = np.clip(np.round(base + noise), 0, 255).astype(np.uint8)
    return image, mask


def _draw_shape(mask: np.ndarray, cls: int, rng: np.random.Generator, yy: np.ndarray,
                xx: np.ndarray, size: int, big: bool) -> None:
    scale = size / 64
    if cls == 1:  # building: a rectangle
        h, w = (rng.integers(8, 18, size=2) if big else rng.integers(4, 9, size=2)) * scale
        y0, x0 = rng.integers(0, size, size=2)
        mask[(yy >= y0) & (yy < y0 + h) & (xx >= x0) & (xx < x0 + w)] = cls
    elif cls == 2:  # road: a straight band across the scene
        width = (rng.integers(4, 7) if big else rng.integers(2, 4)) * scale
        offset = rng.integers(0, size)
        coord = yy if rng.random() < 0.5 else xx
        mask[(coord >= offset) & (coord < offset + width)] = cls
    else:  # water or vegetation: an ellipse
        ry, rx = (rng.integers(10, 22, size=2) if big else rng.integers(4, 9, size=2)) * scale
        cy, cx = rng.integers(0, size, size=2)
        mask[((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0] = cls


def dominant_class(mask: np.ndarray) -> int:
    """The foreground class covering most pixels (ties go to the lower index)."""
    counts = np.bincount(mask.ravel(), minlength=len(SEG_CLASSES))[1:]
    return int(np.argmax(counts)) + 1


def generate(root: str | os.PathLike, num_scenes: int = 400, size: int = 64,
             random_seed: int = 0, progress: bool = True) -> Path:
    """Write the dataset under `root` (atomically); skip if the same settings already exist."""
    import rasterio
    from affine import Affine
    from PIL import Image

    root = Path(root)
    settings = {"version": GENERATOR_VERSION, "num_scenes": num_scenes, "size": size,
                "random_seed": random_seed}
    marker = root / "generator.json"
    if marker.is_file() and json.loads(marker.read_text()) == settings:
        return root
    with atomic_dir(root) as tmp:
        (tmp / "images").mkdir()
        (tmp / "masks").mkdir()
        rows = []
        for index in tqdm(range(num_scenes), desc="synthetic scenes", leave=True,
                          disable=not progress):
            image, mask = generate_scene(random_seed, index, size)
            scene_id = f"scene_{index:04d}"
            # Scenes sit side by side on a grid, as tiles of one survey would.
            x0 = 500_000 + (index % 20) * size * PIXEL_SIZE_M
            y0 = 5_000_000 - (index // 20) * size * PIXEL_SIZE_M
            with rasterio.open(
                tmp / "images" / f"{scene_id}.tif", "w", driver="GTiff", height=size, width=size,
                count=len(BANDS), dtype="uint8", crs="EPSG:32633",
                transform=Affine.translation(x0, y0) @ Affine.scale(PIXEL_SIZE_M, -PIXEL_SIZE_M),
            ) as dst:
                dst.write(image)
                dst.descriptions = BANDS
            Image.fromarray(mask, mode="L").save(tmp / "masks" / f"{scene_id}.png")
            rows.append((scene_id, SEG_CLASSES[dominant_class(mask)]))
        pd.DataFrame(rows, columns=["scene_id", "dominant_class"]).to_csv(
            tmp / "labels.csv", index=False)
        (tmp / "generator.json").write_text(json.dumps(settings, indent=2) + "\n")
    return root


def _read_labels(root: Path) -> pd.DataFrame:
    path = root / "labels.csv"
    if not path.is_file():
        raise MissingDataError(f"{path} not found: generate the dataset first (`geovision "
                               "datasets prepare synthetic`, or train without --no-build).")
    return pd.read_csv(path, dtype=str).sort_values("scene_id", kind="stable")


class _Synthetic(GeoDataset):
    BANDS = BANDS
    # Computed with geovision.data.statistics over the train split of the default generation
    # (400 scenes, seed 0), on images scaled to [0, 1]; tests recompute and compare.
    MEANS = (0.4687, 0.4439, 0.3505, 0.4180)
    STD_DEVS = (0.2250, 0.1546, 0.1489, 0.2192)

    @classmethod
    def download_and_extract(cls, root: str | os.PathLike) -> Path:
        """Nothing to download: generate the scenes deterministically into `root`."""
        return generate(root)


class SyntheticClassification(_Synthetic):
    """Scene classification: the dominant land cover of each synthetic scene."""

    NAME = "synthetic"
    TASK = "classification"
    CLASS_NAMES = SCENE_CLASSES

    @classmethod
    def classification_df(cls, root: Path, splits: SplitSettings) -> pd.DataFrame:
        labels = _read_labels(Path(root))
        label_idx = labels["dominant_class"].map(SCENE_CLASSES.index).astype(np.int64)
        return pd.DataFrame({
            "image_path": "images/" + labels["scene_id"] + ".tif",
            "label_str": labels["dominant_class"],
            "label_idx": label_idx,
            "split": stratified_splits(label_idx.to_numpy(), splits.val_split,
                                       splits.test_split, splits.random_seed),
        }).reset_index(drop=True)


class SyntheticSegmentation(_Synthetic):
    """Land-cover segmentation of the same scenes (five classes including background)."""

    NAME = "synthetic_segmentation"
    TASK = "segmentation"
    CLASS_NAMES = SEG_CLASSES

    @classmethod
    def segmentation_df(cls, root: Path, splits: SplitSettings) -> pd.DataFrame:
        labels = _read_labels(Path(root))
        return pd.DataFrame({
            "image_path": "images/" + labels["scene_id"] + ".tif",
            "mask_path": "masks/" + labels["scene_id"] + ".png",
            # Stratify by dominant cover so every split sees every kind of scene.
            "split": stratified_splits(labels["dominant_class"].to_numpy(), splits.val_split,
                                       splits.test_split, splits.random_seed),
        }).reset_index(drop=True)


class SyntheticMultilabel(_Synthetic):
    """Multi-label scene tagging of the same scenes: every land cover that takes up at least
    PRESENCE of the scene's pixels (1 to 4 labels a scene in the default generation)."""

    NAME = "synthetic_multilabel"
    TASK = "multilabel"
    CLASS_NAMES = SCENE_CLASSES
    PRESENCE = 0.02

    @classmethod
    def multilabel_df(cls, root: Path, splits: SplitSettings) -> pd.DataFrame:
        from PIL import Image

        labels = _read_labels(Path(root))
        label_strs = []
        for scene_id in labels["scene_id"]:
            with Image.open(Path(root) / "masks" / f"{scene_id}.png") as png:
                mask = np.asarray(png)
            share = np.bincount(mask.ravel(), minlength=len(SEG_CLASSES))[1:] / mask.size
            label_strs.append(LABEL_SEPARATOR.join(
                name for name, part in zip(SCENE_CLASSES, share, strict=True)
                if part >= cls.PRESENCE))
        return pd.DataFrame({
            "image_path": "images/" + labels["scene_id"] + ".tif",
            "label_str": label_strs,
            "split": stratified_splits(labels["dominant_class"].to_numpy(), splits.val_split,
                                       splits.test_split, splits.random_seed),
        }).reset_index(drop=True)
