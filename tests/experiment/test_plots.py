"""Plotting functions on sample inputs: the right files, each a real, non-empty PNG."""

from __future__ import annotations

import pandas as pd
from PIL import Image

from geovision.experiment.plots import (
    curve_names,
    plot_comparison,
    plot_confusion_matrix,
    plot_curves,
    plot_learning_rate,
    plot_run,
)

METRICS = pd.DataFrame({
    "epoch": [0, 1, 2], "step": [5, 10, 15],
    "train_lr_epoch": [0.001, 0.002, 0.001],
    "train_loss": [1.2, 0.8, 0.6], "val_loss": [1.1, 0.9, 0.7],
    "train_accuracy": [0.4, 0.6, 0.8], "val_accuracy": [0.5, 0.6, 0.7],
    "val_f1": [0.3, 0.5, 0.6],
})
CONFUSION = pd.DataFrame([[5, 1, 0], [2, 7, 1], [0, 0, 0]], index=["a", "b", "c"],
                         columns=["a", "b", "c"])


def assert_png(path, min_size=(100, 100)):
    assert path.is_file() and path.stat().st_size > 1000, path
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size[0] >= min_size[0] and image.size[1] >= min_size[1]


def test_curve_names_put_loss_first_and_skip_the_learning_rate():
    assert curve_names(METRICS) == ["loss", "accuracy", "f1"]


def test_plot_curves_writes_one_png_per_quantity(tmp_path):
    paths = plot_curves(METRICS, tmp_path)
    assert [p.name for p in paths] == ["loss.png", "accuracy.png", "f1.png"]
    for path in paths:
        assert_png(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["accuracy.png", "f1.png", "loss.png"]


def test_plot_learning_rate(tmp_path):
    assert_png(plot_learning_rate(METRICS, tmp_path / "lr.png"))
    assert plot_learning_rate(METRICS.drop(columns="train_lr_epoch"), tmp_path / "no.png") is None
    assert not (tmp_path / "no.png").exists()


def test_plot_confusion_matrix_with_an_empty_class(tmp_path):
    path = plot_confusion_matrix(CONFUSION, tmp_path / "cm.png", "test")
    assert_png(path)
    assert list(tmp_path.iterdir()) == [path]  # written atomically: no temporary left


def test_plot_comparison(tmp_path):
    curves = {"a/run/1": pd.Series([0.5, 0.6], index=[0, 1]),
              "b/run/2": pd.Series([0.4, 0.7, 0.8], index=[0, 1, 2])}
    assert_png(plot_comparison(curves, "val_accuracy", tmp_path / "cmp.png"))


def test_plot_run_draws_every_plot_from_the_run_files(tmp_path):
    run = tmp_path / "run"
    (run / "evaluation").mkdir(parents=True)
    METRICS.to_csv(run / "metrics.csv", index=False)
    CONFUSION.to_csv(run / "evaluation" / "test_confusion_matrix.csv")
    CONFUSION.to_csv(run / "evaluation" / "val_confusion_matrix.csv")
    paths = plot_run(run, tmp_path / "out")
    assert sorted(p.name for p in paths) == [
        "accuracy.png", "f1.png", "learning_rate.png", "loss.png",
        "test_confusion_matrix.png", "val_confusion_matrix.png"]
    for path in paths:
        assert path.parent == tmp_path / "out"
        assert_png(path)
    # Default destination: the run's own plots/ folder.
    assert len(plot_run(run)) == 6 and len(list((run / "plots").glob("*.png"))) == 6

