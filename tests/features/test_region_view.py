"""Drawing extracted regions on their image."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from geovision.features.arrow_io import make_record, write_region_dataset
from geovision.features.view import PALETTE, draw_regions, read_vocabulary, region_labels


@pytest.fixture()
def scene(tmp_path: Path) -> tuple[Path, Path]:
    """A 200 x 300 grey image and a dataset with two known regions on it."""
    image = tmp_path / "field.png"
    Image.fromarray(np.full((200, 300, 3), 128, dtype=np.uint8)).save(image)
    boxes = np.array([[150, 20, 250, 60], [20, 100, 180, 180]], dtype=np.float32)
    row = make_record("field", 200, 300, np.array([3, 7]), np.array([0.5, 0.9]),
                      np.array([1, 2]), np.array([0.3, 0.05]), boxes,
                      np.zeros((2, 4), dtype=np.float32), num_objects=4)
    return write_region_dataset([row], tmp_path / "ds", 4, 4, info={}), image


def is_colour(pixels: np.ndarray, colour: tuple[int, int, int]) -> np.ndarray:
    return (pixels == np.array(colour)).all(axis=-1)


def test_draw_regions_best_first(scene, tmp_path: Path):
    dataset, image = scene
    out = np.asarray(Image.open(draw_regions(dataset, "field", image, tmp_path / "a.png")))
    assert out.shape == (200, 300, 3)
    # The most confident region (0.9) gets the first colour: bottom and left edges.
    assert is_colour(out[180, 20:181], PALETTE[0]).all()
    assert is_colour(out[120:181, 20], PALETTE[0]).all()
    assert is_colour(out[60, 150:251], PALETTE[1]).all()
    assert is_colour(out[150, 100], (128, 128, 128))  # inside a box, away from its label
    only_best = np.asarray(Image.open(draw_regions(dataset, "field", image, tmp_path / "b.png",
                                                   top=1)))
    assert not is_colour(only_best, PALETTE[1]).any()
    assert not list(tmp_path.glob(".b.png*"))


def test_draw_regions_errors(scene, tmp_path: Path):
    dataset, image = scene
    with pytest.raises(KeyError, match="'nope' is not in"):
        draw_regions(dataset, "nope", image, tmp_path / "x.png")
    small = tmp_path / "small.png"
    Image.fromarray(np.zeros((20, 30, 3), dtype=np.uint8)).save(small)
    with pytest.raises(ValueError, match="wrong file"):
        draw_regions(dataset, "field", small, tmp_path / "x.png")


def test_draw_regions_on_extracted_features(extracted, image_folder: Path, tmp_path: Path):
    out = draw_regions(extracted.path, "street", image_folder / "street.jpg",
                       tmp_path / "street.png", top=3)
    drawn = np.asarray(Image.open(out).convert("RGB"))
    original = np.asarray(Image.open(image_folder / "street.jpg").convert("RGB"))
    assert drawn.shape == original.shape == (48, 80, 3)
    assert is_colour(drawn, PALETTE[0]).any() and is_colour(drawn, PALETTE[2]).any()


def test_labels_use_vocabulary_names(tmp_path: Path):
    vocab = tmp_path / "objects_vocab.txt"
    vocab.write_text("tree,trees\nroof\n")
    names = read_vocabulary(vocab)
    assert names == ["tree", "roof"]
    labels = region_labels(np.array([1, 0, 5]), np.array([0.9, 0.5, 0.25]),
                           np.array([0, 1, 0]), np.array([0.6, 0.05, 0.3]),
                           names, ["green", "red"])
    assert labels == ["green roof 0.90", "tree 0.50", "green obj5 0.25"]
