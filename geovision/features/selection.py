"""Which proposals become an image's regions, and box normalisation for the language models.

The selection matches py-bottom-up-attention's feature-extraction notebooks: per-class NMS at
0.5, 0.6, ..., 0.9, stopping at the first threshold that leaves the wanted number of regions.
(HuggingFace's LXMERT research-project port runs one class-agnostic NMS instead, so its regions
differ.) Per-class NMS can keep one proposal for several classes, so regions are counted as
unique proposals. When no threshold leaves enough, the best-scoring remaining proposals fill
the gap, as the original Caffe extractor did.
"""

from __future__ import annotations

import numpy as np
import torch
from torchvision.ops import batched_nms


def unique_in_order(values: torch.Tensor) -> torch.Tensor:
    """The distinct values of a 1-D tensor, in order of first appearance."""
    if values.numel() == 0:
        return values
    uniq, inverse = torch.unique(values, return_inverse=True)
    positions = torch.arange(values.numel(), device=values.device)
    first = torch.full((uniq.numel(),), values.numel(), device=values.device, dtype=torch.long)
    first = first.scatter_reduce(0, inverse, positions, reduce="amin")
    return uniq[first.argsort()]


def select_regions(boxes: torch.Tensor, probs: torch.Tensor, image_size: tuple[int, int],
                   num_objects: int = 36, score_thresh: float = 0.2,
                   nms_thresholds: tuple[float, ...] = (0.5, 0.6, 0.7, 0.8, 0.9)
                   ) -> torch.Tensor:
    """Indices of the proposals to keep, best first.

    boxes: (R, 4), or (R, K, 4) per class; probs: (R, K + 1), background in the last column;
    image_size: (height, width) of the image the boxes live in. Returns exactly
    `num_objects` unique indices when R >= num_objects, otherwise all R.
    """
    if probs.ndim != 2 or probs.shape[1] < 2:
        raise ValueError(f"probs must be (R, K + 1) with K >= 1, got {tuple(probs.shape)}.")
    num_props, num_classes = probs.shape[0], probs.shape[1] - 1
    per_class = boxes.ndim == 3
    expected = (num_props, num_classes, 4) if per_class else (num_props, 4)
    if tuple(boxes.shape) != expected:
        raise ValueError(f"boxes must be (R, 4) or (R, K, 4) = {expected} for probs "
                         f"{tuple(probs.shape)}, got {tuple(boxes.shape)}.")
    if num_objects <= 0:
        raise ValueError(f"num_objects must be positive, got {num_objects}.")
    if num_props == 0:
        return torch.zeros(0, dtype=torch.long, device=probs.device)
    height, width = image_size
    scores = probs[:, :num_classes].float()
    # Only the (proposal, class) pairs above the threshold take part; a flat nonzero is
    # much faster than a 2-D one on the CPU.
    flat = (scores > score_thresh).reshape(-1).nonzero().squeeze(1)
    prop_idx, class_idx = flat // num_classes, flat % num_classes
    cand_scores = scores[prop_idx, class_idx]
    cand_boxes = (boxes[prop_idx, class_idx] if per_class else boxes[prop_idx]).float()
    cand_boxes = torch.stack((cand_boxes[:, 0].clamp(0, width), cand_boxes[:, 1].clamp(0, height),
                              cand_boxes[:, 2].clamp(0, width), cand_boxes[:, 3].clamp(0, height)),
                             dim=1)
    chosen = prop_idx[:0]
    for thresh in nms_thresholds:
        keep = batched_nms(cand_boxes, cand_scores, class_idx, thresh)  # best score first
        chosen = unique_in_order(prop_idx[keep])
        if chosen.numel() >= num_objects:
            return chosen[:num_objects]
    # Top up with the remaining proposals in order of their best foreground score.
    order = scores.max(dim=1).values.argsort(descending=True, stable=True)
    remaining = order[~torch.isin(order, chosen)]
    return torch.cat((chosen, remaining[: num_objects - chosen.numel()]))


def normalize_boxes(boxes: torch.Tensor | np.ndarray, img_h: float,
                    img_w: float) -> torch.Tensor | np.ndarray:
    """x1y1x2y2 pixel boxes (..., 4) -> clipped to the image and divided by its width and
    height, so every value is in [0, 1] (LXMERT's `visual_pos`). Same type as the input."""
    if img_h <= 0 or img_w <= 0:
        raise ValueError(f"Image size must be positive, got height={img_h}, width={img_w}.")
    if isinstance(boxes, np.ndarray):
        out = boxes.astype(np.float32, copy=True)
        out[..., 0::2] = np.clip(out[..., 0::2], 0, img_w) / np.float32(img_w)
        out[..., 1::2] = np.clip(out[..., 1::2], 0, img_h) / np.float32(img_h)
        return np.clip(out, 0.0, 1.0)
    out = boxes.float().clone()
    out[..., 0::2] = out[..., 0::2].clamp(0, img_w) / img_w
    out[..., 1::2] = out[..., 1::2].clamp(0, img_h) / img_h
    return out.clamp(0.0, 1.0)
