"""Attribution on a model trained on the synthetic dataset: the maps find the planted class,
pass the faithfulness and randomisation checks, and the report covers every task."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from geovision.analysis.attribution import explain, predicted_target, prepare
from geovision.analysis.attribution.metrics import (
    band_ablation,
    cascading_randomisation,
    deletion_insertion,
    relevance_mass,
    spearman,
)
from geovision.analysis.attribution.report import attribution_report
from geovision.data.datasets.synthetic import (
    SyntheticClassification,
    SyntheticMultilabel,
    SyntheticSegmentation,
)
from tests.analysis.attribution_models import TinyCNN, TinySegmenter, seeded


@pytest.fixture(scope="module")
def trained_segmenter(synthetic_root):
    """TinySegmenter trained for a few seconds on the synthetic train split."""
    train = SyntheticSegmentation(synthetic_root, split="train")
    images = torch.stack([train[i][0] for i in range(96)])
    masks = torch.stack([train[i][1].argmax(0) for i in range(96)])
    model = seeded(TinySegmenter, in_channels=4, num_classes=5, width=12).train()
    optimiser = torch.optim.Adam(model.parameters(), lr=0.02)
    for step in range(60):
        rows = torch.arange(step * 16, step * 16 + 16) % 96
        optimiser.zero_grad()
        nn.functional.cross_entropy(model(images[rows]), masks[rows]).backward()
        optimiser.step()
    test = SyntheticSegmentation(synthetic_root, split="test")
    return model.eval(), test


def test_trained_maps_find_the_class_region_and_are_faithful(trained_segmenter):
    model, test = trained_segmenter
    images = torch.stack([test[i][0] for i in range(4)])
    truth = torch.stack([test[i][1].argmax(0) for i in range(4)])
    prepared = prepare(model, images)
    with torch.no_grad():
        accuracy = (prepared(images).argmax(1) == truth).float().mean()
    assert accuracy > 0.8  # it learnt the signatures
    target = predicted_target(prepared, images, "segmentation")
    regions = (truth == target.classes.view(-1, 1, 1)).float()
    for method, options in (("integrated_gradients", {"n_steps": 64}), ("grad_cam", {}),
                            ("kernel_shap", {"n_samples": 120, "n_segments": 16})):
        result = explain(prepared, images, target, method, prepared=True, **options)
        mass = relevance_mass(result.maps, regions)
        assert (mass > regions.mean(dim=(1, 2))).all(), method
        scores = deletion_insertion(prepared, images, result.maps, target)
        assert (scores["deletion_auc"] < scores["insertion_auc"]).all(), method
        if method == "integrated_gradients":  # completeness within 1% at 64 steps
            with torch.no_grad():
                gap = target(prepared(images)) - target(prepared(torch.zeros_like(images)))
            assert (result.extras["delta"].abs() <= 0.01 * gap.abs()).all()


def test_randomisation_decorrelates_ig_and_grad_cam(trained_segmenter):
    model, test = trained_segmenter
    images = torch.stack([test[i][0] for i in range(3)])
    prepared = prepare(model, images)
    target = predicted_target(prepared, images, "segmentation")
    for method, options in (("integrated_gradients", {"n_steps": 16}),
                            ("grad_cam", {"layer": "encoder.2"})):
        curve = cascading_randomisation(
            prepared, images, target,
            lambda m, method=method, o=options: explain(m, images, target, method,
                                                        prepared=True, **o).maps)
        assert [name for name, _ in curve] == ["head", "encoder.2", "encoder.0"]
        correlations = torch.tensor([value for _, value in curve])
        assert (correlations.abs() < 0.9).all(), (method, curve)
        # IG is the input times an averaged gradient: some of the input's own structure stays
        assert abs(curve[-1][1]) < (0.5 if method == "grad_cam" else 0.75), (method, curve)
    sparse = cascading_randomisation(
        prepared, images, target,
        lambda m: explain(m, images, target, "grad_cam", prepared=True, layer="encoder.2").maps,
        max_points=2)
    assert [name for name, _ in sparse] == ["head", "encoder.0"]  # all three randomised
    assert sparse[-1] == curve[-1]
    same = explain(prepared, images, target, "grad_cam", prepared=True).maps
    assert torch.allclose(spearman(same, same), torch.ones(3))


def test_band_ablation_ranks_the_only_informative_band_first():
    model = nn.Sequential(nn.Conv2d(4, 3, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    with torch.no_grad():
        model[0].weight.zero_()
        model[0].weight[:, 2] = torch.tensor([[[3.0]], [[-3.0]], [[0.0]]])
        model[0].bias.zero_()
    images = torch.randn(5, 4, 8, 8) * 0.2 + torch.tensor([0, 0, 1.0, 0]).view(1, 4, 1, 1)
    target = predicted_target(model, images, "classification")
    drops = band_ablation(model, images, target)
    assert (drops.argmax(dim=1) == 2).all()
    maps = explain(model, images, target, "integrated_gradients", n_steps=8).maps
    assert (maps.abs().sum(dim=(2, 3)).argmax(dim=1) == 2).all()


@pytest.mark.parametrize("dataset_cls,model", [
    (SyntheticClassification, lambda: seeded(TinyCNN, num_classes=4)),
    (SyntheticMultilabel, lambda: seeded(TinyCNN, num_classes=4)),
    (SyntheticSegmentation, lambda: seeded(TinySegmenter, num_classes=5)),
])
def test_report_has_six_methods_maps_metrics_and_summary(synthetic_root, tmp_path, dataset_cls,
                                                          model):
    test_set = dataset_cls(synthetic_root, split="test")
    options = {"integrated_gradients": {"n_steps": 8},
               "lime": {"n_samples": 40, "n_segments": 6},
               "kernel_shap": {"n_samples": 40, "n_segments": 6},
               "feature_visualisation": {"steps": 8}}
    report = attribution_report(model(), test_set, tmp_path, num_images=2, options=options,
                                progress=False)
    methods = ["integrated_gradients", "guided_backprop", "grad_cam", "lime", "kernel_shap",
               "feature_visualisation"]
    assert list(report.metrics.index) == methods
    for method in methods:
        assert report.figures[method].stat().st_size > 1000
        assert report.figures[f"{method}_bands"].stat().st_size > 1000
    scored = report.metrics.drop(index="feature_visualisation")
    assert scored[["deletion_auc", "insertion_auc"]].notna().all().all()
    assert ((scored["deletion_auc"] >= 0) & (scored["insertion_auc"] <= 1)).all()
    assert set(report.randomisation) == {"integrated_gradients", "guided_backprop", "grad_cam"}
    assert set(report.band_importance["lime"]) == set(test_set.BANDS)  # per-band superpixels
    assert abs(sum(report.band_importance["integrated_gradients"].values()) - 1) < 1e-5
    assert report.df_idx == test_set.split_df["df_idx"].tolist()[:2]
    if dataset_cls is SyntheticSegmentation:
        assert "relevance_mass" in report.metrics
    else:
        truth = test_set.split_df["label_str"].tolist()[:2]
        assert report.actual == [t or "-" for t in truth]
    saved = json.loads((tmp_path / "report.json").read_text())
    assert [row["method"] for row in saved["metrics"]] == methods
    summary = report.summary_md.read_text()
    assert "| integrated_gradients |" in summary and "## Band importance" in summary


def test_report_lists_a_method_that_does_not_apply_and_keeps_the_others(synthetic_root,
                                                                        tmp_path):
    model = seeded(TinyCNN, num_classes=4)
    for i, module in enumerate(model.features):
        if isinstance(module, nn.ReLU):
            model.features[i] = nn.SiLU()
    test_set = SyntheticClassification(synthetic_root, split="test")
    report = attribution_report(model, test_set, tmp_path, num_images=2,
                                methods=("guided_backprop", "grad_cam"), randomise=(),
                                progress=False)
    assert list(report.skipped) == ["guided_backprop"] and "SiLU" in report.skipped[
        "guided_backprop"]
    assert list(report.metrics.index) == ["guided_backprop", "grad_cam"]
    assert report.metrics.loc["grad_cam", "deletion_auc"] >= 0
    assert "guided_backprop" not in report.figures and report.figures["grad_cam"].is_file()
    assert "**guided_backprop does not apply to this model**" in report.summary_md.read_text()
    assert json.loads((tmp_path / "report.json").read_text())["skipped"] == report.skipped
