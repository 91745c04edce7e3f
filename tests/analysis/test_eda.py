"""The EDA report: plots and a markdown summary whose figures match the statistics table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from geovision.analysis.eda import eda_report
from geovision.data.datasets.synthetic import (
    SyntheticClassification,
    SyntheticMultilabel,
    SyntheticSegmentation,
    generate,
)
from geovision.data.statistics import class_column, compute_image_statistics

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory.mktemp("eda") / "synthetic", num_scenes=24, size=32,
                    progress=False)


def table_for(dataset_cls, root: Path):
    return compute_image_statistics(dataset_cls, root, dataset_cls.build_df(root), workers=1,
                                    progress=False).table


def test_classification_report(scenes: Path, tmp_path: Path) -> None:
    table = table_for(SyntheticClassification, scenes)
    report = eda_report(SyntheticClassification, table, tmp_path / "eda")
    assert sorted(report.images) == ["band_histograms", "class_balance", "image_sizes",
                                     "spectral_signatures"]
    for path in report.images.values():
        assert path.parent == tmp_path / "eda" and path.read_bytes()[:8] == PNG_MAGIC
    assert report.markdown_path.read_text() == report.markdown
    counts = table["label_str"].value_counts()
    assert report.figures["imbalance_ratio"] == pytest.approx(counts.max() / counts.min())
    assert report.figures["num_images"] == 24
    assert report.figures["num_images_train"] == int((table["split"] == "train").sum())
    for name in counts.index:
        train = int(((table["label_str"] == name) & (table["split"] == "train")).sum())
        assert f"| {name} | {train} |" in report.markdown
        assert report.markdown.count(f"| {name} |") == 2  # balance and signature tables
    assert "| 32 | 32 | 24 |" in report.markdown
    rows = table[table["label_str"] == "water"]
    nir = (rows["nir_mean"] * rows["nir_count"]).sum() / rows["nir_count"].sum()
    assert f"{nir:.4g}" in report.markdown.split("spectral signature")[1]
    assert not list(tmp_path.glob(".eda*"))  # written atomically


def test_multilabel_report_counts_every_label_of_an_image(scenes: Path,
                                                          tmp_path: Path) -> None:
    table = table_for(SyntheticMultilabel, scenes)
    assert table["label_str"].str.contains("|", regex=False).any()  # several labels somewhere
    report = eda_report(SyntheticMultilabel, table, tmp_path / "eda")
    assert "an image counts once for each of its labels" in report.markdown
    for name in SyntheticMultilabel.CLASS_NAMES:
        carries = table["label_str"].str.split("|").map(lambda names, n=name: n in names)
        train = int((carries & (table["split"] == "train")).sum())
        assert f"| {name} | {train} |" in report.markdown
        rows = table[carries]
        red = (rows["red_mean"] * rows["red_count"]).sum() / rows["red_count"].sum()
        assert f"| {name} | {red:.4g} |" in report.markdown  # signature over its images


def test_segmentation_report(scenes: Path, tmp_path: Path) -> None:
    table = table_for(SyntheticSegmentation, scenes)
    report = eda_report(SyntheticSegmentation, table, tmp_path / "eda")
    assert "object_sizes" in report.images and report.images["object_sizes"].is_file()
    pixels = np.array([table[class_column(c, "pixels")].sum()
                       for c in SyntheticSegmentation.CLASS_NAMES], dtype=np.float64)
    coverage = [report.figures[f"coverage_{c}"] for c in SyntheticSegmentation.CLASS_NAMES]
    np.testing.assert_allclose(coverage, pixels / pixels.sum())
    assert sum(coverage) == pytest.approx(1.0)
    objects = np.stack(table[class_column("building", "object_size_hist")].to_list()).sum()
    assert report.figures["objects_building"] == objects > 0
    assert "## Objects per class" in report.markdown
    water_nir = table[class_column("water", "nir_sum")].sum() / pixels[3]
    assert water_nir < 40  # water is dark in the near infrared


def test_empty_table_is_refused(scenes: Path, tmp_path: Path) -> None:
    table = table_for(SyntheticClassification, scenes)
    with pytest.raises(ValueError, match="compute the image statistics first"):
        eda_report(SyntheticClassification, table.iloc[:0], tmp_path / "eda")
