"""Integrated Gradients attributions and the report built on them."""

from __future__ import annotations

import torch
from torch import nn

from geovision.analysis.attribution import attribution_report, integrated_gradients
from geovision.data.datasets.synthetic import SyntheticClassification


class Linear(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(4 * 8 * 8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x.flatten(1))


def test_linear_model_attributions_are_input_times_weight():
    torch.manual_seed(0)
    model = Linear()
    images = torch.randn(2, 4, 8, 8)
    targets = torch.tensor([0, 2])
    attributions, delta = integrated_gradients(model, images, targets, n_steps=8)
    weights = model.layer.weight.detach()[targets].view(2, 4, 8, 8)
    torch.testing.assert_close(attributions, images * weights, rtol=1e-4, atol=1e-5)
    assert delta.abs().max() < 1e-4  # completeness holds for a linear model


def test_report_writes_grid_and_band_shares(synthetic_root, tmp_path):
    test_set = SyntheticClassification(synthetic_root, split="test")
    model = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 4))
    report = attribution_report(model, test_set, tmp_path, num_images=3, n_steps=4)
    assert report.grid_png.is_file() and report.grid_png.stat().st_size > 1000
    assert report.df_idx == test_set.split_df["df_idx"].tolist()[:3]
    assert report.actual == [test_set.CLASS_NAMES[test_set[i][1]] for i in range(3)]
    assert set(report.band_importance) == set(test_set.BANDS)
    assert abs(sum(report.band_importance.values()) - 1) < 1e-6
    assert report.explained == report.predicted


def test_multilabel_report_explains_the_most_confident_label(synthetic_root, tmp_path):
    from geovision.data.datasets.synthetic import SyntheticMultilabel

    test_set = SyntheticMultilabel(synthetic_root, split="test")
    torch.manual_seed(0)
    model = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 4))
    report = attribution_report(model, test_set, tmp_path, num_images=3, n_steps=4)
    assert report.grid_png.is_file()
    assert report.actual == test_set.split_df["label_str"].tolist()[:3]
    with torch.no_grad():
        logits = model(torch.stack([test_set[i][0] for i in range(3)]))
    names = test_set.CLASS_NAMES
    assert report.explained == [names[int(i)] for i in logits.argmax(dim=1)]
    assert report.predicted == ["|".join(n for n, on in zip(names, row >= 0, strict=True) if on)
                                or "-" for row in logits]
