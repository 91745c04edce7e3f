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
from torch.utils.data import DataLoader, Dataset

from geovision.errors import ConfigError, DataError
from geovision.features.arrow_io import read_region_dataset

LOADED_COLUMNS = ("img_id", "img_h", "img_w", "num_boxes", "objects_id", "boxes",
                  "normalized_boxes", "roi_features")


class RegionFeatureDataset(Dataset):
    """One or several region-feature Arrow datasets as one map-style dataset of numpy rows.

    Rows are fetched a batch at a time (`__getitems__`, which DataLoader uses): decoding
    Arrow columns per batch is several times faster than per row.
    """

    def __init__(self, paths: Sequence[str | os.PathLike]) -> None:
        self.paths = [Path(p) for p in paths]
        self.parts = [read_region_dataset(p).with_format("numpy", columns=list(LOADED_COLUMNS))
                      for p in self.paths]
        widths = {str(p): int(d.features["roi_features"].shape[1])
                  for p, d in zip(self.paths, self.parts, strict=True)}
        if len(set(widths.values())) > 1:
            raise DataError(f"Region-feature datasets have different feature widths {widths}; "
                            "combine only features from the same detector.")
        self.feature_dim = next(iter(widths.values()))
        self.ends = np.cumsum([len(d) for d in self.parts])

    def __len__(self) -> int:
        return int(self.ends[-1])

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.__getitems__([index])[0]

    def __getitems__(self, indices: Sequence[int]) -> list[dict[str, Any]]:
        indices = np.asarray(indices, dtype=np.int64)
        if len(indices) and (indices.min() < 0 or indices.max() >= len(self)):
            raise IndexError(f"Row indices must be in [0, {len(self)}).")
        part_of = np.searchsorted(self.ends, indices, side="right")
        rows: list[dict[str, Any] | None] = [None] * len(indices)
        for part in np.unique(part_of):
            where = np.flatnonzero(part_of == part)
            start = self.ends[part - 1] if part else 0
            batch = self.parts[part][(indices[where] - start).tolist()]
            for j, position in enumerate(where):
                rows[position] = {key: values[j] for key, values in batch.items()}
        return rows


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
        raise ConfigError("load_region_features needs at least one dataset path.")
    generator = torch.Generator().manual_seed(seed) if shuffle else None
    return DataLoader(RegionFeatureDataset(paths), batch_size=batch_size, shuffle=shuffle,
                      num_workers=num_workers, collate_fn=collate_regions,
                      generator=generator, drop_last=drop_last)
