"""Region-feature extraction speed, and the share of it spent choosing regions.

Figures (random weights; the random detector is initialised so that, like the published one,
its RPN keeps the full 300 proposals and some regions pass the 0.2 score threshold):

- CPU, tiny model, 64 x 64 images; CPU, full model, one 600 x 1000 image.
- With CUDA: full model at 600 x 1000, 36 boxes, fp32 (convolutions in TF32, PyTorch's
  default) and bf16, batches of in-memory images (decoding excluded).

Baseline, measured in the same run on the same detector outputs: region selection done
naively, as the original caffe extractor did it: NMS for every class in a Python loop, for
every threshold of the sweep. Ours runs one batched NMS over the (proposal, class) pairs that
pass the score threshold. Both rates divide images by detector time + selection time.
"""

from __future__ import annotations

import time

import torch
from torchvision.ops import nms

from bench.common import bench_line, best_of
from geovision.features.config import DetectorConfig
from geovision.features.detector import RegionOutputs
from geovision.features.extract import RegionExtractor
from geovision.features.selection import select_regions

NUM_OBJECTS = 36
GPU_BATCH = 8
GPU_BATCHES = 6
GPU_GOALS = {"fp32": 25.0, "bf16": 100.0}


def naive_select(boxes: torch.Tensor, probs: torch.Tensor, num_objects: int = NUM_OBJECTS,
                 score_thresh: float = 0.2,
                 nms_thresholds: tuple[float, ...] = (0.5, 0.6, 0.7, 0.8, 0.9)) -> torch.Tensor:
    """The baseline: per-class NMS in a Python loop; a proposal's confidence is its best score
    among the classes where it survives; top-up by that confidence."""
    num_classes = probs.shape[1] - 1
    max_conf = probs.new_zeros(probs.shape[0])
    for thresh in nms_thresholds:
        max_conf = probs.new_zeros(probs.shape[0])
        for k in range(num_classes):
            class_boxes = boxes[:, k] if boxes.ndim == 3 else boxes
            scores = probs[:, k]
            keep = nms(class_boxes, scores, thresh)
            max_conf[keep] = torch.maximum(max_conf[keep], scores[keep])
        if int((max_conf >= score_thresh).sum()) >= num_objects:
            break
    return max_conf.argsort(descending=True)[:num_objects]


def ours_select(out: RegionOutputs, config: DetectorConfig) -> torch.Tensor:
    return select_regions(out.boxes, out.probs, out.image_size, NUM_OBJECTS,
                          config.score_thresh, config.nms_thresholds)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_selection(outputs: list[RegionOutputs], config: DetectorConfig, device: torch.device,
                   repeats: int) -> tuple[float, float]:
    """Seconds per batch of our selection and of the naive one, on the same outputs."""
    def run(select) -> None:
        for out in outputs:
            select(out)
        sync(device)

    ours = best_of(lambda: run(lambda o: ours_select(o, config)), repeats)
    naive = best_of(lambda: run(lambda o: naive_select(o.boxes, o.probs)), repeats)
    return ours, naive


def report(name: str, images: int, detect_s: float, ours_s: float, naive_s: float,
           goal: float = 1.0) -> float:
    rate = images / (detect_s + ours_s)
    baseline = images / (detect_s + naive_s)
    share = ours_s / (detect_s + ours_s)
    print(f"{name}: detector {detect_s / images * 1e3:.1f} ms/image, selection "
          f"{ours_s / images * 1e3:.2f} ms/image ({share:.1%} of the time), naive selection "
          f"{naive_s / images * 1e3:.1f} ms/image ({naive_s / (detect_s + naive_s):.1%})",
          flush=True)
    bench_line(f"{name}_images_per_s", rate, "images/s", "naive_selection", baseline, goal)
    bench_line(f"{name}_selection_speedup", naive_s / ours_s, "x", "naive_selection", 1.0, 1.0)
    return rate


def random_images(count: int, height: int, width: int, device: str | torch.device = "cpu",
                  seed: int = 0) -> list[torch.Tensor]:
    """Uint8 RGB images with large flat rectangles on noise, so regions have some content."""
    gen = torch.Generator().manual_seed(seed)
    images = []
    for _ in range(count):
        image = torch.randint(40, 200, (height, width, 3), generator=gen, dtype=torch.uint8)
        for _ in range(6):
            y, x = (int(torch.randint(0, s // 2, (1,), generator=gen)) for s in (height, width))
            h, w = (int(torch.randint(s // 8, s // 2, (1,), generator=gen))
                    for s in (height, width))
            image[y:y + h, x:x + w] = torch.randint(0, 256, (3,), generator=gen,
                                                    dtype=torch.uint8)
        images.append(image.to(device))
    return images


def bench_cpu_tiny() -> None:
    config = DetectorConfig.tiny()
    extractor = RegionExtractor(config, num_objects=NUM_OBJECTS)
    images = random_images(8, 64, 64)
    extractor.detect(images)  # warm-up
    detect = best_of(lambda: extractor.detect(images), 5)
    outputs = extractor.detect(images)
    ours, naive = time_selection(outputs, config, torch.device("cpu"), 5)
    report("features_cpu_tiny", len(images), detect, ours, naive)


def bench_cpu_full() -> None:
    config = DetectorConfig()
    start = time.perf_counter()
    extractor = RegionExtractor(config, num_objects=NUM_OBJECTS)
    print(f"features_cpu_full: random full-size detector built in "
          f"{time.perf_counter() - start:.1f} s", flush=True)
    images = random_images(1, 600, 1000)
    start = time.perf_counter()
    outputs = extractor.detect(images)
    detect = time.perf_counter() - start
    out = outputs[0]
    passing = int((out.probs[:, :-1] > config.score_thresh).sum())
    print(f"features_cpu_full: {out.proposals.shape[0]} proposals, {passing} (proposal, class) "
          f"pairs above {config.score_thresh}", flush=True)
    ours, naive = time_selection(outputs, config, torch.device("cpu"), 2)
    report("features_cpu_full", 1, detect, ours, naive)


def bench_gpu(precision: str) -> None:
    device = torch.device("cuda")
    config = DetectorConfig()
    extractor = RegionExtractor(config, num_objects=NUM_OBJECTS, precision=precision,
                                device=device)
    images = random_images(GPU_BATCH, 600, 1000, device)
    ids = [str(i) for i in range(GPU_BATCH)]
    for _ in range(2):  # warm-up: cudnn autotuning, allocator
        extractor(images, ids)
    sync(device)
    start = time.perf_counter()
    for _ in range(GPU_BATCHES):
        outputs = extractor.detect(images)
    sync(device)
    detect = (time.perf_counter() - start) / GPU_BATCHES
    ours, naive = time_selection(outputs, config, device, 3)
    start = time.perf_counter()
    for _ in range(GPU_BATCHES):
        extractor(images, ids)  # detector, selection and copying the rows to the host
    sync(device)
    end_to_end = GPU_BATCH * GPU_BATCHES / (time.perf_counter() - start)
    name = f"features_gpu_full_{precision}"
    report(name, GPU_BATCH, detect, ours, naive)
    bench_line(f"{name}_rows_per_s", end_to_end, "images/s", f"target_{GPU_GOALS[precision]:g}",
               GPU_GOALS[precision], 1.0)


def main() -> None:
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads", flush=True)
    bench_cpu_tiny()
    bench_cpu_full()
    if torch.cuda.is_available():
        torch.backends.cudnn.benchmark = True  # one input size throughout
        print(f"GPU: {torch.cuda.get_device_name()}, batch {GPU_BATCH}", flush=True)
        for precision in ("fp32", "bf16"):
            bench_gpu(precision)
    else:
        print("No CUDA device: GPU figures skipped.", flush=True)


if __name__ == "__main__":
    main()
