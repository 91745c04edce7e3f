"""Scene inference: chips/s of predict_scene against the same model on the same chips
already in memory (goal >= 0.8), and peak RSS of a 5000 vs a 20000 px scene (goal: the
larger within 1.5x the smaller, i.e. 5000's peak / 20000's peak >= 1/1.5).

The model of the goal line is the U-Net the demo's unet_potts recipe trains (its architecture
from recipes/unet_potts.yaml, random weights), on a 4096 px 4-band float32 deflate scene in
512 px chips, batch 16. The same comparison with a near-free per-pixel model (PixelMLP) is
printed after it without a goal: there the scene's decoding and the COGs' encoding alone
take as long as the model, so its ratio is the pipeline's own cost, not what a user sees.

Each peak is measured in a fresh process (its VmHWM), on a generated one-band uint8 scene.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from bench.common import bench_line, median_line

CHIP = 512
BATCH = 16


class PixelMLP(nn.Module):
    """A small per-pixel network (1x1 layers as matrix products)."""

    def __init__(self, in_channels: int = 4, hidden: int = 8, num_classes: int = 5) -> None:
        super().__init__()
        self.w1 = nn.Parameter(torch.randn(hidden, in_channels))
        self.w2 = nn.Parameter(torch.randn(num_classes, hidden))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = torch.relu(torch.einsum("oi,nihw->nohw", self.w1, x))
        return torch.einsum("oi,nihw->nohw", self.w2, hidden)


def spec(bands: tuple[str, ...], model: nn.Module | None = None):
    """A SceneModel of `model` (default: a PixelMLP) for 5 classes over `bands`."""
    from geovision.inference import SceneModel

    return SceneModel(model if model is not None else PixelMLP(len(bands)), bands=bands,
                      means=(0.5,) * len(bands), std_devs=(0.2,) * len(bands),
                      task="segmentation", class_names=tuple(f"c{i}" for i in range(5)))


def recipe_unet(bands: int, classes: int = 5) -> nn.Module:
    """The architecture of recipes/unet_potts.yaml (the demo's U-Net), random weights."""
    import yaml

    from geovision.models import create_model

    recipe = Path(__file__).resolve().parents[1] / "recipes" / "unet_potts.yaml"
    model = yaml.safe_load(recipe.read_text())["model"]
    return create_model(model["name"], in_channels=bands, num_classes=classes,
                        **model.get("kwargs", {}))


def throughput(folder: Path, model: nn.Module, rounds: int = 3) -> tuple[list, list]:
    """predict_scene and `model` on in-memory chips, alternately `rounds` times: per round
    (chips/s of predict_scene, chips/s in memory), each round printed with the phases of
    predict_scene, so the spread shows."""
    from geovision.inference import predict_scene
    from geovision.inference.generated import write_generated_scene

    bands = ("red", "green", "blue", "nir")
    scene = folder / "scene.tif"
    if not scene.exists():
        write_generated_scene(scene, 4096, bands=bands)
    scene_model = spec(bands, model)
    chips = torch.rand(BATCH, len(bands), CHIP, CHIP)
    ours, in_memory = [], []
    for round_ in range(rounds):
        started = time.perf_counter()
        result = predict_scene(scene_model, scene, folder / "out", chip_size=CHIP, overlap=0,
                               batch_size=BATCH, progress=False)
        ours.append(result.num_chips / (time.perf_counter() - started))
        batches = -(-result.num_chips // BATCH)
        started = time.perf_counter()
        with torch.inference_mode():
            for _ in range(batches):
                torch.softmax(model(chips), dim=1)
        in_memory.append(batches * BATCH / (time.perf_counter() - started))
        print(f"  round {round_}: predict_scene {ours[-1]:.2f} chips/s (seconds "
              f"{result.seconds}); model on chips in memory {in_memory[-1]:.2f} chips/s; "
              f"ratio {ours[-1] / in_memory[-1]:.3f}", flush=True)
    return ours, in_memory


PEAK = """
import json, sys, torch
torch.manual_seed(0)
from geovision.io.memory import peak_rss_bytes
from bench.inference import spec
from geovision.inference import predict_scene
result = predict_scene(spec(("nir",)), sys.argv[1], sys.argv[2], chip_size=1024, overlap=0,
                       batch_size=16, compress="lzw", write_probabilities=False,
                       progress=False)
print(json.dumps({"peak": peak_rss_bytes()}))
"""


def peaks(folder: Path) -> None:
    from geovision.inference.generated import write_generated_scene

    measured = {}
    for size in (5000, 20000):
        scene = write_generated_scene(folder / f"s{size}.tif", size, bands=("nir",),
                                      dtype="uint8", compress="lzw", tile=1024, noise=0)
        run = subprocess.run([sys.executable, "-c", PEAK, str(scene), str(folder / f"o{size}")],
                             capture_output=True, text=True, check=True)
        measured[size] = json.loads(run.stdout.strip().splitlines()[-1])["peak"]
        scene.unlink()
        print(f"{size} px scene: peak RSS {measured[size] / 2**20:.0f} MiB")
    bench_line("inference_peak_rss_20000_vs_5000", measured[5000] / measured[20000],
               "ratio", "5000px_peak_over_20000px_peak", 1.0, 1 / 1.5)


def main() -> None:
    np.random.seed(0)
    torch.manual_seed(0)  # the same PixelMLP weights every run
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        print(f"the demo's U-Net (recipes/unet_potts.yaml), {CHIP} px chips, batch {BATCH}:",
              flush=True)
        ours, in_memory = throughput(Path(tmp), recipe_unet(4).eval())
        median_line("inference_chips_per_s", ours, "chips/s", "model_on_chips_in_memory",
                    in_memory, 0.8)
        print("PixelMLP, a near-free model (no goal: the pipeline's own cost):", flush=True)
        ours, in_memory = throughput(Path(tmp), PixelMLP(4).eval())
        ratio = statistics.median(o / m for o, m in zip(ours, in_memory, strict=True))
        print(f"  predict_scene / in memory with PixelMLP: median ratio {ratio:.3f}",
              flush=True)
        peaks(Path(tmp))


if __name__ == "__main__":
    main()
