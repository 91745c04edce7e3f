"""Checks that a region-feature dataset holds what its consumers expect."""

from __future__ import annotations

import os

import numpy as np

from geovision.features.arrow_io import read_region_dataset


def region_dataset_problems(path: str | os.PathLike, num_objects: int, feature_dim: int,
                            num_classes: int, num_attributes: int) -> list[str]:
    """Problems with the dataset at `path` (empty when fine): shapes, box ranges, ids and
    confidences, and padding beyond num_boxes."""
    dataset = read_region_dataset(path).with_format("numpy")
    problems: list[str] = []
    for row in dataset:
        img, n = row["img_id"], int(row["num_boxes"])
        features, boxes, normalized = row["roi_features"], row["boxes"], row["normalized_boxes"]
        if features.shape != (num_objects, feature_dim):
            problems.append(f"{img}: roi_features {features.shape}, expected "
                            f"{(num_objects, feature_dim)}")
        if not 0 <= n <= num_objects:
            problems.append(f"{img}: num_boxes {n} outside 0..{num_objects}")
        if not np.isfinite(features).all():
            problems.append(f"{img}: non-finite features")
        if normalized.min() < 0 or normalized.max() > 1:
            problems.append(f"{img}: normalized_boxes outside [0, 1]")
        real = boxes[:n]
        if n and ((real[:, 2] < real[:, 0]).any() or (real[:, 3] < real[:, 1]).any()
                  or real[:, [0, 2]].max() > row["img_w"] or real[:, [1, 3]].max() > row["img_h"]):
            problems.append(f"{img}: boxes not (x1, y1, x2, y2) inside the image")
        if (row["objects_id"][:n] >= num_classes).any() or (row["attrs_id"][:n]
                                                            >= num_attributes).any():
            problems.append(f"{img}: object or attribute ids out of range")
        confidences = np.concatenate([row["objects_conf"][:n], row["attrs_conf"][:n]])
        if confidences.size and (confidences.min() < 0 or confidences.max() > 1):
            problems.append(f"{img}: confidences outside [0, 1]")
        if (features[n:] != 0).any():
            problems.append(f"{img}: padding rows beyond num_boxes are not zero")
        if len(problems) >= 20:
            break
    return problems
