"""The Arrow dataset layout and the classic LXMERT TSV, both ways."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest

from geovision.features.arrow_io import (
    check_region_dataset,
    export_tsv,
    import_tsv,
    read_extraction_info,
    read_region_dataset,
    write_region_dataset,
)


def assert_same_rows(a, b) -> None:
    assert a.column_names == b.column_names and len(a) == len(b)
    a, b = a.with_format("numpy"), b.with_format("numpy")
    for row_a, row_b in zip(a, b, strict=True):
        for key in row_a:
            np.testing.assert_array_equal(row_a[key], row_b[key], err_msg=key)


def test_dataset_layout(tmp_path: Path, make_records):
    rows = make_records([3, 5, 0], num_objects=5, feature_dim=6)
    path = write_region_dataset(rows, tmp_path / "ds", 5, 6, info={"random_weights": True},
                                description="three rows")
    data = read_region_dataset(path)
    assert data.info.description == "three rows"
    assert data.features["roi_features"].shape == (5, 6)
    assert data.features["roi_features"].dtype == "float32"
    row = data.with_format("numpy")[0]
    assert row["img_id"] == "img0" and row["num_boxes"] == 3
    assert row["roi_features"].dtype == np.float32 and row["roi_features"].shape == (5, 6)
    assert (row["objects_id"][3:] == -1).all() and (row["roi_features"][3:] == 0).all()
    np.testing.assert_allclose(row["normalized_boxes"][:3, 2],
                               np.clip(row["boxes"][:3, 2], 0, row["img_w"]) / row["img_w"],
                               rtol=1e-6)
    info = read_extraction_info(path)
    assert info == {"random_weights": True, "num_images": 3, "num_objects": 5,
                    "feature_dim": 6}
    assert not list(tmp_path.glob(".ds*"))  # no temporary folders left behind


def test_tsv_round_trip(tmp_path: Path, make_records):
    rows = make_records([4, 2, 4, 0], num_objects=4, feature_dim=8, seed=3)
    original = write_region_dataset(rows, tmp_path / "a", 4, 8, info={})
    tsv = export_tsv(original, tmp_path / "features.tsv")
    lines = tsv.read_text().splitlines()
    assert len(lines) == 4  # no header
    fields = lines[0].split("\t")
    assert len(fields) == 10 and fields[0] == "img0" and fields[7] == "4"
    boxes = np.frombuffer(base64.b64decode(fields[8]), dtype=np.float32).reshape(4, 4)
    np.testing.assert_array_equal(boxes, rows[0]["boxes"])
    features = np.frombuffer(base64.b64decode(fields[9]), dtype=np.float32)
    assert features.shape == (4 * 8,)
    assert lines[1].split("\t")[7] == "2"
    assert len(base64.b64decode(lines[1].split("\t")[3])) == 2 * 8  # two int64 object ids
    back = import_tsv(tsv, tmp_path / "b")
    assert_same_rows(read_region_dataset(original), read_region_dataset(back))
    assert read_extraction_info(back)["source"] == "tsv"


def test_tsv_import_pads_to_num_objects_and_rejects_bad_rows(tmp_path: Path, make_records):
    rows = make_records([2, 3], num_objects=3, feature_dim=4)
    tsv = export_tsv(write_region_dataset(rows, tmp_path / "a", 3, 4, info={}),
                     tmp_path / "x.tsv")
    wide = read_region_dataset(import_tsv(tsv, tmp_path / "wide", num_objects=36))
    assert wide.features["roi_features"].shape == (36, 4)
    assert wide.with_format("numpy")[1]["num_boxes"] == 3
    with pytest.raises(ValueError, match="pass at least 3"):
        import_tsv(tsv, tmp_path / "narrow", num_objects=2)
    broken = tmp_path / "broken.tsv"
    broken.write_text("img\t10\t10\n")
    with pytest.raises(ValueError, match="broken.tsv:1 has 3 columns"):
        import_tsv(broken, tmp_path / "c")
    assert not (tmp_path / "c").exists()


def test_reading_something_else_is_an_error(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="No region-feature dataset"):
        read_region_dataset(tmp_path)
    with pytest.raises(FileNotFoundError, match="region_features.json"):
        read_extraction_info(tmp_path)
    (tmp_path / "region_features.json").write_text(json.dumps({"a": 1}))
    assert read_extraction_info(tmp_path) == {"a": 1}


def test_check_region_dataset(tmp_path: Path, make_records):
    rows = make_records([3, 5, 0, 2], num_objects=5, feature_dim=6)
    good = write_region_dataset(rows, tmp_path / "good", 5, 6, info={})
    assert check_region_dataset(good) == []
    rows[1]["normalized_boxes"][0, 2] = 1.5
    rows[2]["roi_features"][4] = np.nan
    rows[3]["boxes"][1] = [10, 10, 5, 12]
    bad = write_region_dataset(rows, tmp_path / "bad", 5, 6, info={})
    info = json.loads((bad / "region_features.json").read_text())
    (bad / "region_features.json").write_text(json.dumps({**info, "num_images": 9}))
    problems = "\n".join(check_region_dataset(bad))
    assert "4 rows but region_features.json records 9 images" in problems
    assert "normalized boxes outside [0, 1]: 1 images, e.g. ['img1']" in problems
    assert "non-finite features: 1 images, e.g. ['img2']" in problems
    assert "inverted boxes: 1 images, e.g. ['img3']" in problems
    assert "padding slots are not empty: 1 images, e.g. ['img2']" in problems
    assert "normalized boxes differ" in problems


def test_extracted_dataset_passes_the_check(extracted):
    assert check_region_dataset(extracted.path) == []
