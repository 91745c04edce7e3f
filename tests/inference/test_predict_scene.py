"""predict_scene on generated scenes: exact across chip borders, georeferenced, band matching,
labels and areas, nodata, and bounded memory on a 20000 x 20000 scene."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest
import rasterio
import torch
from affine import Affine
from torch import nn

from geovision.errors import DataError
from geovision.inference import SceneBand, SceneModel, match_bands, predict_scene
from geovision.inference.generated import write_generated_scene


class PickBand(nn.Module):
    """Returns its input: with one band in and mean 0, std 1, the 'logits' are the band."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.clone()


def write_scene(path, data, names, waves=None, nodata=None, crs="EPSG:32633"):
    transform = Affine.translation(300_000, 4_000_000) @ Affine.scale(20.0, -20.0)
    profile = {"driver": "GTiff", "height": data.shape[1], "width": data.shape[2],
               "count": data.shape[0], "dtype": data.dtype.name, "crs": crs,
               "transform": transform, "tiled": True, "blockxsize": 128, "blockysize": 128}
    if nodata is not None:
        profile["nodata"] = nodata
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        dst.descriptions = tuple(names)
        for i, wave in enumerate(waves or [], start=1):
            dst.update_tags(i, wavelength_nm=str(wave))
    return path


def test_identity_model_reproduces_the_band_exactly_across_chip_borders(tmp_path):
    rng = np.random.default_rng(0)
    data = rng.random((2, 300, 430), dtype=np.float32)
    scene = write_scene(tmp_path / "scene.tif", data, ["green", "red"])
    spec = SceneModel(PickBand(), bands=("red",), means=(0.0,), std_devs=(1.0,),
                      task="segmentation", class_names=("value",))
    result = predict_scene(spec, scene, tmp_path / "out", chip_size=128, overlap=24,
                           batch_size=5, output="logits", progress=False)
    assert result.num_chips == 3 * 4
    with rasterio.open(tmp_path / "out" / "logits.tif") as out, rasterio.open(scene) as src:
        np.testing.assert_array_equal(out.read(1), data[1])
        assert out.crs == src.crs and out.transform == src.transform
        assert out.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
    assert result.bands[0]["scene_band"] == "red" and result.bands[0]["how"] == "name"


class ReturnInput(nn.Module):
    """Returns the very tensor it is given: a view of the batch buffer the scene was read into."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


@pytest.mark.parametrize("shape, chip, batch", [((300, 430), 128, 5), ((100, 90), 128, 4)])
def test_batches_read_ahead_into_reused_buffers_keep_every_chip_exact(tmp_path, shape, chip,
                                                                       batch):
    """Batches are read one ahead into two buffers taking turns; a model whose output is its
    input buffer still gets every chip stitched exactly (batches of 5, 5 and 2 chips: the
    third reuses the first's buffer), and a scene smaller than one chip is padded into it."""
    data = np.random.default_rng(1).random((1, *shape), dtype=np.float32)
    scene = write_scene(tmp_path / "scene.tif", data, ["red"])
    spec = SceneModel(ReturnInput(), bands=("red",), means=(0.0,), std_devs=(1.0,),
                      task="segmentation", class_names=("value",))
    result = predict_scene(spec, scene, tmp_path / "out", chip_size=chip, overlap=16,
                           batch_size=batch, output="logits", progress=False)
    with rasterio.open(tmp_path / "out" / "logits.tif") as out:
        np.testing.assert_array_equal(out.read(1), data[0])
    assert result.num_chips == (12 if shape[0] == 300 else 1)


class FailsOnSecondBatch(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.calls == 2:
            raise RuntimeError("model failed on batch 2")
        return x.clone()


def test_a_model_failing_mid_scene_stops_the_reader_and_leaves_no_output(tmp_path):
    data = np.random.default_rng(2).random((1, 300, 430), dtype=np.float32)
    scene = write_scene(tmp_path / "scene.tif", data, ["red"])
    spec = SceneModel(FailsOnSecondBatch(), bands=("red",), means=(0.0,), std_devs=(1.0,),
                      task="segmentation", class_names=("value",))
    with pytest.raises(RuntimeError, match="batch 2"):
        predict_scene(spec, scene, tmp_path / "out", chip_size=128, overlap=0, batch_size=2,
                      output="logits", progress=False)
    assert not [t for t in threading.enumerate() if t.name.startswith("scene-reader")]
    assert list((tmp_path / "out").iterdir()) == []


def test_hyperspectral_bands_are_matched_by_nearest_wavelength():
    waves = np.arange(420.0, 1000.0, 9.0)
    scene = [SceneBand(f"band_{i}", float(w)) for i, w in enumerate(waves)]
    matches = match_bands(("red", "green", "blue", "nir"), scene)
    for match, wanted in zip(matches, (664.6, 559.8, 492.4, 832.8), strict=True):
        assert abs(waves[match.scene_index] - wanted) <= 4.5 and match.how == "wavelength"
    sentinel = [SceneBand(n) for n in ("B02", "B03", "B04", "B08")]  # no tags: known names
    assert [m.scene_band for m in match_bands(("nir", "red"), sentinel)] == ["B08", "B04"]
    with pytest.raises(DataError, match=r"lacks the model's band\(s\) nir \(832.8 nm\)"):
        match_bands(("red", "nir"), [SceneBand("red"), SceneBand("green")])


def test_segmenter_writes_labels_areas_quicklook_and_marks_nodata(tmp_path):
    rng = np.random.default_rng(1)
    data = rng.random((3, 200, 260), dtype=np.float32)
    data[:, :20, :30] = np.nan  # nodata corner
    names = ["band_a", "band_b", "band_c"]
    scene = write_scene(tmp_path / "scene.tif", data, names, waves=[490.0, 665.0, 840.0],
                        crs="EPSG:32633")
    # class 1 wins where red (the 665 nm band) is above its mean, most probabilities 0 or 1
    model = nn.Conv2d(2, 2, 1)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[[[0.0]], [[0.0]]], [[[10.0]], [[0.0]]]]))
        model.bias.zero_()
    spec = SceneModel(model, bands=("red", "nir"), means=(0.5, 0.5), std_devs=(0.25, 0.25),
                      task="segmentation", class_names=("low", "high"))
    result = predict_scene(spec, scene, tmp_path / "out", chip_size=64, overlap=8,
                           batch_size=7, progress=False)
    assert [b["scene_band"] for b in result.bands] == ["band_b", "band_c"]
    with rasterio.open(tmp_path / "out" / "labels.tif") as src:
        labels = src.read(1)
        assert src.nodata == 255 and src.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
    expected = np.where(data[1] > 0.5, 1, 0).astype(np.uint8)
    expected[:20, :30] = 255
    decided = np.abs(data[1] - 0.5) > 0.01  # ties to within uint8 rounding either way
    np.testing.assert_array_equal(labels[decided], expected[decided])
    pixel_km2 = 20.0 * 20.0 / 1e6
    assert result.class_areas_km2["high"] == pytest.approx((labels == 1).sum() * pixel_km2)
    assert sum(result.class_areas_km2.values()) == pytest.approx(
        (200 * 260 - 20 * 30) * pixel_km2)
    with rasterio.open(tmp_path / "out" / "probabilities.tif") as src:
        probs = src.read()
        assert probs.shape == (2, 200, 260) and probs.dtype == np.uint8
        assert (probs[:, :20, :30] == 0).all()
        assert src.nodata is None and src.overviews(1) == [2]  # 0 is a probability
    with rasterio.open(tmp_path / "out" / "probabilities.tif", overview_level=0) as src:
        overview = src.read().astype(float)
    means = probs.astype(float).reshape(2, 100, 2, 130, 2).mean(axis=(2, 4))
    assert np.abs(overview - means).max() <= 1  # zeros averaged in, not skipped
    assert (tmp_path / "out" / "quicklook.png").stat().st_size > 100
    saved = json.loads((tmp_path / "out" / "prediction.json").read_text())
    assert saved["class_areas_km2"] == result.class_areas_km2
    assert not list((tmp_path / "out").glob(".*"))  # no temporary files left


def test_a_scene_lacking_a_band_is_refused_naming_it(tmp_path):
    scene = write_scene(tmp_path / "rgb.tif", np.zeros((3, 32, 32), np.float32),
                        ["red", "green", "blue"])
    spec = SceneModel(PickBand(), bands=("red", "nir"), means=(0, 0), std_devs=(1, 1),
                      task="segmentation", class_names=("a", "b"))
    with pytest.raises(DataError, match="nir"):
        predict_scene(spec, scene, tmp_path / "out", chip_size=32, progress=False)


class PixelLinear(nn.Module):
    """A per-pixel linear classifier: a 1x1 convolution computed as a matrix product (torch's
    CPU conv2d takes 10 s and 4.8 GiB of workspace on one-band 2048 px batches)."""

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(num_classes, in_channels))
        self.bias = nn.Parameter(torch.zeros(num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("oi,nihw->nohw", self.weight, x) + self.bias.view(1, -1, 1, 1)


PEAK_SCRIPT = textwrap.dedent("""
    import json, sys, torch
    from geovision.inference import SceneModel, predict_scene
    from geovision.io.memory import peak_rss_bytes
    from tests.inference.test_predict_scene import PixelLinear
    torch.set_num_threads(2)
    model = PixelLinear(1, 2)
    spec = SceneModel(model, bands=("nir",), means=(0.5,), std_devs=(0.2,),
                      task="segmentation", class_names=("water", "land"))
    result = predict_scene(spec, sys.argv[1], sys.argv[2], chip_size=1024, overlap=0,
                           batch_size=16, compress="lzw", write_probabilities=False,
                           progress=False)
    peak = peak_rss_bytes()
    print(json.dumps({"peak": peak, "chips": result.num_chips, "seconds": result.seconds}))
""")


def test_a_20000_px_scene_runs_in_under_2_gib(tmp_path):
    import time
    started = time.perf_counter()
    # uncompressed: written and read at disk speed (400 MB)
    scene = write_generated_scene(tmp_path / "big.tif", 20000, bands=("nir",), dtype="uint8",
                                  compress=None, tile=1024, noise=0)
    print("generated in", time.perf_counter() - started)
    run = subprocess.run([sys.executable, "-c", PEAK_SCRIPT, str(scene), str(tmp_path / "out")],
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    figures = json.loads(run.stdout.strip().splitlines()[-1])
    assert figures["chips"] == 20 * 20
    print(figures)
    assert figures["peak"] < 2 * 1024**3, figures
    with rasterio.open(tmp_path / "out" / "labels.tif") as src:
        assert (src.height, src.width) == (20000, 20000)
        assert src.read(1, window=((0, 512), (0, 512))).max() < 2
