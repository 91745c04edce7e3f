"""The built-in dataset: deterministic files, labels derived from content, recorded MEANS."""

from __future__ import annotations

import numpy as np
import pandas as pd

from geovision.data.datasets.synthetic import (
    SCENE_CLASSES,
    SEG_CLASSES,
    SyntheticClassification,
    SyntheticSegmentation,
    dominant_class,
    generate,
    generate_scene,
)
from geovision.data.image_io import read_image
from geovision.hashing import hash_directory


def test_generation_is_deterministic(tmp_path):
    a = generate(tmp_path / "a", num_scenes=12, size=32, progress=False)
    b = generate(tmp_path / "b", num_scenes=12, size=32, progress=False)
    assert hash_directory(a) == hash_directory(b)
    c = generate(tmp_path / "c", num_scenes=12, size=32, random_seed=1, progress=False)
    assert hash_directory(a) != hash_directory(c)


def test_regeneration_with_same_settings_is_skipped(tmp_path):
    root = generate(tmp_path / "s", num_scenes=4, size=16, progress=False)
    stamp = (root / "labels.csv").stat().st_mtime_ns
    generate(root, num_scenes=4, size=16, progress=False)
    assert (root / "labels.csv").stat().st_mtime_ns == stamp


def test_files_follow_the_layout_and_labels_follow_content(synthetic_root):
    labels = pd.read_csv(synthetic_root / "labels.csv")
    assert list(labels.columns) == ["scene_id", "dominant_class"]
    for scene_id, label in labels.head(25).itertuples(index=False):
        image = read_image(synthetic_root / "images" / f"{scene_id}.tif")
        mask = SyntheticSegmentation.read_mask(synthetic_root / "masks" / f"{scene_id}.png")
        assert image.shape == (4, 64, 64) and image.dtype == np.uint8
        assert mask.shape == (64, 64) and mask.max() < len(SEG_CLASSES)
        assert SEG_CLASSES[dominant_class(mask)] == label
    # every scene class is represented in roughly equal numbers
    counts = labels["dominant_class"].value_counts()
    assert set(counts.index) == set(SCENE_CLASSES) and counts.min() > 60


def test_georeferencing_is_written(synthetic_root):
    import rasterio

    with rasterio.open(synthetic_root / "images" / "scene_0021.tif") as src:
        assert src.crs.to_epsg() == 32633
        assert src.transform.a == 10.0
        assert src.descriptions == ("red", "green", "blue", "nir")


def test_surfaces_have_distinct_signatures():
    scenes = [generate_scene(0, i, 64) for i in range(8)]
    image = np.concatenate([s[0].reshape(4, -1) for s in scenes], axis=1)
    mask = np.concatenate([s[1].ravel() for s in scenes])
    water, vegetation = image[:, mask == 3], image[:, mask == 4]
    assert water.size and vegetation.size
    assert water[3].mean() < 50 < 150 < vegetation[3].mean()  # NIR separates them


def test_recorded_means_match_the_train_split(synthetic_root):
    ds = SyntheticClassification(synthetic_root, split="train")
    pixels = np.stack([ds.read_raw(i)[0] for i in range(len(ds))]).astype(np.float64) / 255
    np.testing.assert_allclose(pixels.mean(axis=(0, 2, 3)), ds.MEANS, atol=1e-4)
    np.testing.assert_allclose(pixels.std(axis=(0, 2, 3)), ds.STD_DEVS, atol=1e-4)
