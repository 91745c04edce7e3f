"""Attribution: our Integrated Gradients and Grad-CAM against captum's on the same model,
images and settings (the baseline's time over ours; goal >= 1.0). Timed in alternating
rounds, the median of the per-round ratios: a shared machine's load moves both alike."""

from __future__ import annotations

import time

import torch
from captum.attr import IntegratedGradients, LayerGradCam

from bench.common import median_line
from geovision.analysis.attribution import explain, predicted_target, prepare
from geovision.models.small import SmallCNN


def main() -> None:
    torch.manual_seed(0)
    torch.set_num_threads(2)
    images = torch.randn(8, 4, 64, 64)
    model = prepare(SmallCNN(4, 5, width=16, depth=3), images)
    target = predicted_target(model, images, "classification")
    layer = "features.6.conv"
    contenders = {
        "integrated_gradients": (
            lambda: explain(model, images, target, "integrated_gradients", prepared=True,
                            n_steps=32),
            lambda: IntegratedGradients(model).attribute(images, target=target.classes,
                                                         n_steps=32), 3),
        "grad_cam": (
            lambda: explain(model, images, target, "grad_cam", prepared=True, layer=layer,
                            upsample=False),
            lambda: LayerGradCam(model, model.get_submodule(layer)).attribute(
                images, target=target.classes), 9),
    }
    for name, (ours, theirs, rounds) in contenders.items():
        speedups, ones = [], []
        for _ in range(rounds):
            times = []
            for fn in (ours, theirs):
                start = time.perf_counter()
                fn()
                times.append(time.perf_counter() - start)
            speedups.append(times[1] / times[0])
            ones.append(1.0)
            print(f"{name}: ours {times[0]:.3f} s, captum {times[1]:.3f} s")
        median_line(f"attribution_{name}", speedups, "x", "captum", ones, 1.0)


if __name__ == "__main__":
    main()
