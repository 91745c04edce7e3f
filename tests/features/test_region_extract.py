"""End-to-end extraction on generated images with the tiny detector."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from geovision.features.arrow_io import read_extraction_info, read_region_dataset
from geovision.features.config import DetectorConfig
from geovision.features.extract import extract_region_features, image_id, list_images
from geovision.features.weights import build_detector, to_published_state_dict

NUM_OBJECTS = 10
SIZES = {"139": (64, 64), "street": (48, 80), "gray": (70, 50), "tile": (64, 64)}


def test_result_and_rows(extracted):
    assert extracted.num_images == 4 and extracted.num_objects == NUM_OBJECTS
    assert extracted.feature_dim == DetectorConfig.tiny().feature_dim == 128
    assert extracted.random_weights is True and extracted.weights is None
    assert extracted.mean_num_boxes == NUM_OBJECTS  # the tiny RPN keeps 60 proposals
    data = read_region_dataset(extracted.path).with_format("numpy")
    assert sorted(data["img_id"]) == sorted(SIZES)  # leading zeros dropped, .txt skipped
    for row in data:
        h, w = SIZES[row["img_id"]]
        assert (row["img_h"], row["img_w"]) == (h, w)
        assert row["num_boxes"] == NUM_OBJECTS
        assert row["roi_features"].shape == (NUM_OBJECTS, 128)
        assert row["roi_features"].dtype == np.float32
        assert np.isfinite(row["roi_features"]).all() and (row["roi_features"] >= 0).all()
        boxes = row["boxes"]
        assert boxes[:, 0::2].min() >= 0 and boxes[:, 0::2].max() <= w
        assert boxes[:, 1::2].min() >= 0 and boxes[:, 1::2].max() <= h
        assert (boxes[:, 2] >= boxes[:, 0]).all() and (boxes[:, 3] >= boxes[:, 1]).all()
        np.testing.assert_allclose(row["normalized_boxes"], boxes / [w, h, w, h], rtol=1e-5)
        assert row["objects_id"].min() >= 0 and row["objects_id"].max() < 20
        assert row["attrs_id"].min() >= 0 and row["attrs_id"].max() < 8
        assert (row["objects_conf"] > 0).all() and (row["objects_conf"] <= 1).all()


def test_random_weights_are_labelled(extracted):
    data = read_region_dataset(extracted.path)
    assert data.info.description.startswith("RANDOM WEIGHTS")
    info = read_extraction_info(extracted.path)
    assert info["random_weights"] is True and info["seed"] == 0 and info["weights"] is None
    assert info["config"]["num_classes"] == 20 and info["num_images"] == 4
    assert info["mean_num_boxes"] == NUM_OBJECTS and "torch" in info["packages"]


def test_extraction_is_deterministic(extracted, image_folder: Path, tmp_path: Path):
    again = extract_region_features(image_folder, tmp_path / "again", num_objects=NUM_OBJECTS,
                                    config=DetectorConfig.tiny(), batch_size=2,
                                    progress=False)
    a = read_region_dataset(extracted.path).with_format("numpy")
    b = read_region_dataset(again.path).with_format("numpy")
    np.testing.assert_array_equal(a["roi_features"], b["roi_features"])
    np.testing.assert_array_equal(a["boxes"], b["boxes"])


def test_published_weights_file_and_fewer_proposals(image_folder: Path, tmp_path: Path):
    config = DetectorConfig.tiny()
    weights = tmp_path / "vg.pkl"
    with open(weights, "wb") as f:
        state = to_published_state_dict(build_detector(config, seed=5))
        pickle.dump({"model": {k: v.numpy() for k, v in state.items()}}, f)
    images = [image_folder / "street.jpg", image_folder / "000000000139.png"]
    result = extract_region_features(images, tmp_path / "out", num_objects=80, weights=weights,
                                     config=config, progress=False)
    assert result.random_weights is False and result.weights == weights
    info = read_extraction_info(result.path)
    assert info["random_weights"] is False and len(info["weights_sha256"]) == 64
    data = read_region_dataset(result.path).with_format("numpy")
    # The tiny RPN keeps at most 60 proposals: fewer than 80 regions, the rest is padding.
    for row in data:
        n = row["num_boxes"]
        assert 0 < n <= 60
        assert (row["objects_id"][n:] == -1).all() and (row["roi_features"][n:] == 0).all()
    assert result.mean_num_boxes == float(np.mean(data["num_boxes"]))


def test_bad_inputs_are_named(image_folder: Path, tmp_path: Path):
    config = DetectorConfig.tiny()
    with pytest.raises(FileNotFoundError, match="No images in"):
        extract_region_features(tmp_path, tmp_path / "o", config=config, progress=False)
    (tmp_path / "0042.png").write_bytes((image_folder / "000000000139.png").read_bytes())
    (tmp_path / "42.png").write_bytes((image_folder / "000000000139.png").read_bytes())
    with pytest.raises(ValueError, match="both get the id '42'"):
        extract_region_features(tmp_path, tmp_path / "o", config=config, progress=False)
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG not really")
    with pytest.raises(ValueError, match="corrupt.png"):
        extract_region_features([corrupt], tmp_path / "o", config=config, progress=False)
    assert not (tmp_path / "o").exists()
    with pytest.raises(ValueError, match="precision"):
        extract_region_features([corrupt], tmp_path / "o", config=config, precision="int8",
                                progress=False)


def test_bf16_on_cpu_stays_close(image_folder: Path, tmp_path: Path):
    config = DetectorConfig.tiny()
    images = [image_folder / "000000000139.png"]
    fp32 = extract_region_features(images, tmp_path / "a", config=config, progress=False)
    bf16 = extract_region_features(images, tmp_path / "b", config=config, precision="bf16",
                                   progress=False)
    a = read_region_dataset(fp32.path).with_format("numpy")[0]
    b = read_region_dataset(bf16.path).with_format("numpy")[0]
    assert b["roi_features"].dtype == np.float32 and np.isfinite(b["roi_features"]).all()
    assert b["num_boxes"] == a["num_boxes"]
    # Low precision moves features by a few percent, not more.
    scale = np.abs(a["roi_features"]).mean()
    same = [i for i in range(a["num_boxes"]) if np.allclose(a["boxes"][i], b["boxes"][i],
                                                           atol=1.0)]
    assert len(same) >= a["num_boxes"] // 2  # most regions are the same proposals
    diff = np.abs(a["roi_features"][same] - b["roi_features"][same]).mean()
    assert diff < 0.05 * scale


def test_image_ids_and_listing(image_folder: Path):
    assert image_id("COCO/000000000139.jpg") == "139"
    assert image_id("000.png") == "0"
    assert image_id("COCO_val2014_000000000042.jpg") == "COCO_val2014_000000000042"
    assert [p.name for p in list_images(image_folder)] == [
        "000000000139.png", "gray.png", "street.jpg", "tile.tif"]
