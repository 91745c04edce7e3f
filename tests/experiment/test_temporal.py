"""The temporal recipes on a small synthetic_temporal generation: the U-TAE learns the crops
from their seasonal curves, the single-date baseline cannot."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from geovision.data import get_dataset
from geovision.data.datasets.synthetic_temporal import (
    CROP_PEAKS,
    YEAR,
    generate,
    generate_patch,
    greenness,
)
from geovision.data.statistics import compute_image_statistics, means_and_std_devs
from geovision.data.temporal import TimeSeries
from geovision.experiment.config import load_config
from geovision.experiment.runtime.train import train
from geovision.models.temporal import SingleDateUNet, SmallUTAE

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
DATASET = get_dataset("synthetic_temporal")
MARGIN = 0.3  # test mIoU of the temporal recipe over the single-date one, at least


@pytest.fixture(scope="module")
def small_generation(tmp_path_factory) -> Path:
    return generate(tmp_path_factory.mktemp("st") / "synthetic_temporal", num_patches=60,
                    size=16, progress=False)


def test_a_single_date_does_not_tell_crops_apart():
    """At a day drawn uniformly over the year, every crop's greenness has one distribution."""
    days = torch.arange(YEAR).numpy()
    curves = [greenness(days, crop) for crop in range(1, len(CROP_PEAKS) + 1)]
    histograms = [torch.histc(torch.from_numpy(c).float(), bins=10, min=0, max=1)
                  for c in curves]
    for other in histograms[1:]:
        assert torch.equal(other, histograms[0])
    # ... while on one given day they differ
    assert curves[0][CROP_PEAKS[0]] == 1.0 and curves[1][CROP_PEAKS[0]] < 0.05


def test_generation_is_deterministic_with_variable_series(small_generation):
    first, target, dates = generate_patch(0, 3, 16, 6, 10)
    again = generate_patch(0, 3, 16, 6, 10)
    assert (first == again[0]).all() and dates == again[2]
    lengths = {len(generate_patch(0, i, 16, 6, 10)[2]) for i in range(20)}
    assert min(lengths) >= 6 and max(lengths) <= 10 and len(lengths) > 2
    assert (dates[-1] - dates[0]).days < YEAR and first.dtype.name == "int16"
    df = DATASET.build_df(small_generation)
    assert df["split"].value_counts().to_dict() == {"train": 36, "val": 12, "test": 12}


def test_recorded_statistics_match_the_default_generation(tmp_path):
    root = generate(tmp_path / "default", progress=False)
    df = DATASET.build_df(root)
    table = compute_image_statistics(DATASET, root, df, workers=1, progress=False).table
    means, stds = means_and_std_devs(table, DATASET.BANDS, split="train", scale=DATASET.SCALE)
    torch.testing.assert_close(torch.tensor(means), torch.tensor(DATASET.MEANS), atol=5e-5,
                               rtol=0)
    torch.testing.assert_close(torch.tensor(stds), torch.tensor(DATASET.STD_DEVS), atol=5e-5,
                               rtol=0)


def test_models_take_padded_series_and_plain_images():
    torch.manual_seed(0)
    series = TimeSeries(torch.randn(2, 5, 4, 16, 16), torch.tensor([[3, 40, 90, 0, 0]] * 2),
                        torch.tensor([[True, True, True, False, False]] * 2))
    utae = SmallUTAE(4, 3, width=8).eval()
    out = utae(series)
    assert out.shape == (2, 3, 16, 16)
    # padding changes nothing, whatever it holds
    noisy = series._replace(images=series.images.clone())
    noisy.images[:, 3:] = 100.0
    torch.testing.assert_close(utae(noisy), out)
    # the dates matter: the same images on other days give other logits
    assert not torch.allclose(utae(series._replace(days=series.days + 100)), out)
    assert utae(torch.randn(2, 4, 16, 16)).shape == (2, 3, 16, 16)
    single = SingleDateUNet(4, 3, width=8).eval()
    torch.testing.assert_close(single(series), single(series.images[:, 0]))


def train_recipe(name: str, root: Path, home: Path, normalisation: dict) -> dict:
    config = load_config(RECIPES / f"{name}.yaml", dataset_name="synthetic_temporal")
    # As the recipe, on files and with smaller batches (more steps over the 36 patches).
    config = config.model_copy(update={
        "data": config.data.model_copy(update={"source": "files", "batch_size": 4})})
    result = train(config, home=home, root=root, normalisation=normalisation, progress=False)
    return result.test_metrics


def test_temporal_recipe_beats_the_single_date_baseline(small_generation, geovision_home):
    torch.set_num_threads(1)
    df = DATASET.build_df(small_generation)
    table = compute_image_statistics(DATASET, small_generation, df, workers=1,
                                     progress=False).table
    means, stds = means_and_std_devs(table, DATASET.BANDS, "train", scale=DATASET.SCALE)
    normalisation = {"means": list(means), "std_devs": list(stds)}
    temporal = train_recipe("temporal", small_generation, geovision_home, normalisation)
    single = train_recipe("temporal_single_date", small_generation, geovision_home,
                          normalisation)
    assert temporal["test_jaccard"] >= single["test_jaccard"] + MARGIN, (temporal, single)
    assert temporal["test_accuracy"] > 0.9, temporal
