"""Region-feature datasets as batches for LXMERT and VisualBERT.

Each batch holds `visual_feats` (B, N, D), `visual_pos` (B, N, 4, normalised boxes) and
`visual_attention_mask` (B, N), 1 for the first `num_boxes` slots of each image and 0 for
padding, which is what `LxmertModel(visual_feats=, visual_pos=, visual_attention_mask=)` and
`VisualBertModel(visual_embeds=, visual_attention_mask=)` take.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import ConcatDataset, DataLoader, Dataset

from geovision.features.arrow_io import read_region_dataset

LOADED_COLUMNS = ("img_id", "img_h", "img_w", "num_boxes", "objects_id", "boxes",
                  "normalized_boxes", "roi_features")


class RegionFeatureDataset(Dataset):
    """One region-feature Arrow dataset as a map-style torch dataset of numpy rows."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.data = read_region_dataset(self.path).with_format("numpy",
                                                               columns=list(LOADED_COLUMNS))
        shape = self.data.features["roi_features"].shape
        self.num_objects, self.feature_dim = int(shape[0]), int(shape[1])

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.data[int(index)]


def collate_regions(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack rows into model inputs, padding to the longest row and masking by num_boxes."""
    size = max(len(s["roi_features"]) for s in samples)
    dim = samples[0]["roi_features"].shape[1]
    batch = len(samples)
    feats = torch.zeros((batch, size, dim), dtype=torch.float32)
    pos = torch.zeros((batch, size, 4), dtype=torch.float32)
    boxes = torch.zeros((batch, size, 4), dtype=torch.float32)
    objects = torch.full((batch, size), -1, dtype=torch.long)
    mask = torch.zeros((batch, size), dtype=torch.long)
    num_boxes = torch.tensor([int(s["num_boxes"]) for s in samples], dtype=torch.long)
    for i, s in enumerate(samples):
        n = int(s["num_boxes"])
        feats[i, :n] = torch.from_numpy(np.asarray(s["roi_features"][:n], dtype=np.float32))
        pos[i, :n] = torch.from_numpy(np.asarray(s["normalized_boxes"][:n], dtype=np.float32))
        boxes[i, :n] = torch.from_numpy(np.asarray(s["boxes"][:n], dtype=np.float32))
        objects[i, :n] = torch.from_numpy(np.asarray(s["objects_id"][:n], dtype=np.int64))
        mask[i, :n] = 1
    return {
        "visual_feats": feats,
        "visual_pos": pos,
        "visual_attention_mask": mask,
        "num_boxes": num_boxes,
        "boxes": boxes,
        "objects_id": objects,
        "img_id": [str(s["img_id"]) for s in samples],
        "img_h": torch.tensor([int(s["img_h"]) for s in samples], dtype=torch.long),
        "img_w": torch.tensor([int(s["img_w"]) for s in samples], dtype=torch.long),
    }


def load_region_features(paths: str | os.PathLike | Sequence[str | os.PathLike],
                         batch_size: int = 32, shuffle: bool = False, num_workers: int = 0,
                         seed: int = 0, drop_last: bool = False) -> DataLoader:
    """One DataLoader over one or several region-feature datasets (their rows in order).

    The datasets must share the feature width; their slot counts may differ (batches pad
    to the longest). Shuffling is seeded, so the order is reproducible.
    """
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    if not paths:
        raise ValueError("load_region_features needs at least one dataset path.")
    parts = [RegionFeatureDataset(p) for p in paths]
    dims = {str(p.path): p.feature_dim for p in parts}
    if len(set(dims.values())) > 1:
        raise ValueError(f"Region-feature datasets have different feature widths {dims}; "
                         "combine only features from the same detector.")
    generator = torch.Generator().manual_seed(seed) if shuffle else None
    return DataLoader(ConcatDataset(parts), batch_size=batch_size, shuffle=shuffle,
                      num_workers=num_workers, collate_fn=collate_regions,
                      generator=generator, drop_last=drop_last)
