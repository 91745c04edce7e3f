"""Images -> region features: detector, region selection, and the Arrow dataset they go to.

`extract_region_features` is the one entry point the CLI and the Dagster asset call.
`RegionExtractor` is the in-memory part (tensors in, rows out), shared with the benchmark.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from geovision.errors import ConfigError, DataError, MissingDataError
from geovision.features.arrow_io import make_record, write_region_dataset
from geovision.features.config import DetectorConfig
from geovision.features.detector import RegionOutputs
from geovision.features.preprocess import load_rgb, preprocess_batch
from geovision.features.selection import select_regions
from geovision.features.weights import build_detector

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
RANDOM_WEIGHTS_NOTE = ("RANDOM WEIGHTS: these region features come from a randomly initialised "
                       "detector (seed {seed}); they carry no visual meaning and only exercise "
                       "the pipeline. Pass the published checkpoint as weights for real ones.")


@dataclass
class ExtractionResult:
    """What one extraction wrote and how."""

    path: Path
    num_images: int
    num_objects: int
    feature_dim: int
    random_weights: bool
    mean_num_boxes: float
    weights: Path | None
    precision: str
    device: str
    seconds: float

    @property
    def images_per_second(self) -> float:
        return self.num_images / self.seconds if self.seconds > 0 else float("inf")


def list_images(images: Sequence[str | os.PathLike] | str | os.PathLike) -> list[Path]:
    """A folder's image files (sorted, not recursive), or the given list as paths."""
    if isinstance(images, str | os.PathLike):
        folder = Path(images)
        if not folder.is_dir():
            raise MissingDataError(f"Image folder not found: {folder}.")
        paths = sorted(p for p in folder.iterdir()
                       if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not paths:
            raise MissingDataError(f"No images in {folder}: expected files ending in "
                                   f"{', '.join(IMAGE_SUFFIXES)}.")
        return paths
    paths = [Path(p) for p in images]
    if not paths:
        raise ConfigError("No images given to extract region features from.")
    return paths


def image_id(path: str | os.PathLike) -> str:
    """The row id of an image: its file stem, and COCO-style all-digit stems lose their
    leading zeros ("000000000139.jpg" -> "139"), as the LXMERT feature files have them."""
    stem = Path(path).stem
    return str(int(stem)) if stem.isdigit() else stem


def image_ids(paths: Sequence[Path]) -> list[str]:
    """Ids for all images; two files with the same id are an error naming both."""
    seen: dict[str, Path] = {}
    for path in paths:
        key = image_id(path)
        if key in seen:
            raise DataError(f"Images {seen[key]} and {path} both get the id {key!r}; rename "
                            "one or extract them into separate datasets.")
        seen[key] = path
    return list(seen)


class _ImageFiles(Dataset):
    def __init__(self, paths: Sequence[Path], bands: tuple[int, int, int] | None) -> None:
        self.paths, self.bands = list(paths), bands

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[int, torch.Tensor]:
        return index, load_rgb(self.paths[index], self.bands)


def _as_list(batch: list) -> list:
    return batch


class RegionExtractor:
    """A detector on a device plus region selection: RGB uint8 images in, rows out."""

    def __init__(self, config: DetectorConfig | None = None, weights: str | os.PathLike | None
                 = None, *, num_objects: int = 36, precision: str = "fp32",
                 device: str | torch.device = "cpu", seed: int = 0) -> None:
        if precision not in PRECISIONS:
            raise ConfigError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}.")
        if num_objects <= 0:
            raise ConfigError(f"num_objects must be positive, got {num_objects}.")
        self.config = config or DetectorConfig()
        self.weights = Path(weights) if weights is not None else None
        self.random_weights = weights is None
        self.seed = seed
        self.num_objects = num_objects
        self.precision = precision
        self.device = torch.device(device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise ConfigError(f"device={device!r} asked for but CUDA is not available; use "
                              "device='cpu'.")
        model = build_detector(self.config, self.weights, seed=seed).to(self.device)
        if self.device.type == "cuda":
            model = model.to(memory_format=torch.channels_last)
        self.model = model

    def detect(self, images: list[torch.Tensor]) -> list[RegionOutputs]:
        """Run the detector on (H, W, 3) uint8 RGB images (any sizes, batched together)."""
        batch, sizes = preprocess_batch(images, self.config, self.device)
        if self.device.type == "cuda":
            batch = batch.contiguous(memory_format=torch.channels_last)
        low = self.precision != "fp32"
        with torch.autocast(self.device.type, dtype=PRECISIONS[self.precision], enabled=low):
            return self.model(batch, sizes)

    def to_records(self, outputs: list[RegionOutputs], ids: Sequence[str],
                   original_sizes: Sequence[tuple[int, int]]) -> list[dict[str, Any]]:
        """Select each image's regions and express them in its original pixels.

        A region's object is its best foreground class (as in the Caffe extractor), its box
        that class's regressed box, its attribute the best one other than "no attribute".
        Attribute confidences are taken from the softmax over all attribute columns, the
        "no attribute" one included, as the Caffe extractor computes them; so they do not
        sum to one over the real attributes.
        """
        c = self.config
        records = []
        for out, img_id, (img_h, img_w) in zip(outputs, ids, original_sizes, strict=True):
            keep = select_regions(out.boxes, out.probs, out.image_size, self.num_objects,
                                  c.score_thresh, c.nms_thresholds)
            obj_conf, obj_id = out.probs[keep, : c.num_classes].max(dim=1)
            boxes = out.boxes[keep] if c.class_agnostic_boxes else out.boxes[keep, obj_id]
            res_h, res_w = out.image_size
            scale = boxes.new_tensor([img_w / res_w, img_h / res_h, img_w / res_w, img_h / res_h])
            boxes = boxes * scale
            boxes[:, 0::2] = boxes[:, 0::2].clamp(0, img_w)
            boxes[:, 1::2] = boxes[:, 1::2].clamp(0, img_h)
            attr_conf, attr_id = out.attr_probs[keep, : c.num_attributes].max(dim=1)
            arrays = [t.cpu().numpy() for t in (obj_id, obj_conf, attr_id, attr_conf, boxes,
                                                out.features[keep])]
            records.append(make_record(img_id, img_h, img_w, *arrays,
                                       num_objects=self.num_objects))
        return records

    def __call__(self, images: list[torch.Tensor], ids: Sequence[str]) -> list[dict[str, Any]]:
        sizes = [(int(im.shape[0]), int(im.shape[1])) for im in images]
        return self.to_records(self.detect(images), ids, sizes)


def extract_region_features(images: Sequence[str | os.PathLike] | str | os.PathLike,
                            out_dir: str | os.PathLike, *, num_objects: int = 36,
                            weights: str | os.PathLike | None = None, precision: str = "fp32",
                            batch_size: int = 1, device: str = "cpu",
                            config: DetectorConfig | None = None, progress: bool = True,
                            num_workers: int = 0, seed: int = 0,
                            bands: tuple[int, int, int] | None = None) -> ExtractionResult:
    """Extract region features for `images` (a folder or a list of files) into an Arrow
    dataset at `out_dir`, written atomically.

    Without `weights` the detector gets seeded random weights: the result, the dataset
    description and region_features.json say so. `bands` picks the RGB bands of
    multispectral images (default: the first three). `num_workers` decode images in parallel.
    """
    from geovision.hashing import sha256_file
    from geovision.provenance import package_versions

    start = time.perf_counter()
    paths = list_images(images)
    ids = image_ids(paths)
    if batch_size <= 0:
        raise ConfigError(f"batch_size must be positive, got {batch_size}.")
    extractor = RegionExtractor(config, weights, num_objects=num_objects, precision=precision,
                                device=device, seed=seed)
    loader = DataLoader(_ImageFiles(paths, bands), batch_size=batch_size, shuffle=False,
                        num_workers=num_workers, collate_fn=_as_list,
                        pin_memory=extractor.device.type == "cuda")
    box_counts: list[int] = []

    def rows() -> Iterator[dict[str, Any]]:
        with tqdm(total=len(paths), desc="region features", unit="img", leave=True,
                  disable=not progress) as bar:
            for batch in loader:
                indices = [i for i, _ in batch]
                tensors = [t for _, t in batch]
                for record in extractor(tensors, [ids[i] for i in indices]):
                    box_counts.append(record["num_boxes"])
                    yield record
                bar.update(len(batch))

    random = extractor.random_weights
    info = {
        "source": "extract",
        "random_weights": random,
        "seed": seed if random else None,
        "weights": str(extractor.weights) if extractor.weights else None,
        "weights_sha256": sha256_file(extractor.weights) if extractor.weights else None,
        "precision": precision,
        "device": str(extractor.device),
        "config": extractor.config.to_dict(),
        "packages": package_versions(),
    }
    description = (RANDOM_WEIGHTS_NOTE.format(seed=seed) if random else
                   f"Region features from {extractor.weights.name}.")
    path = write_region_dataset(
        rows, out_dir, num_objects, extractor.config.feature_dim,
        info=lambda: {**info, "mean_num_boxes": float(np.mean(box_counts))},
        description=description)
    return ExtractionResult(path=Path(path), num_images=len(box_counts), num_objects=num_objects,
                            feature_dim=extractor.config.feature_dim, random_weights=random,
                            mean_num_boxes=float(np.mean(box_counts)),
                            weights=extractor.weights, precision=precision,
                            device=str(extractor.device),
                            seconds=time.perf_counter() - start)
