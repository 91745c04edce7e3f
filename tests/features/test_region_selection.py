"""Region selection against hand-built cases, and box normalisation bounds."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from geovision.features.selection import normalize_boxes, select_regions, unique_in_order

SIZE = (100, 200)  # height, width


def probs_from(fg: list[list[float]]) -> torch.Tensor:
    """(R, K + 1) probabilities from foreground scores; background takes the rest, last."""
    fg_t = torch.tensor(fg, dtype=torch.float32)
    return torch.cat((fg_t, (1 - fg_t.sum(1, keepdim=True)).clamp(min=0)), dim=1)


def far_boxes(n: int) -> torch.Tensor:
    """n disjoint 10x10 boxes along the x axis."""
    x = torch.arange(n, dtype=torch.float32) * 20
    return torch.stack((x, torch.zeros(n), x + 10, torch.full((n,), 10.0)), dim=1)


def test_unique_in_order_keeps_first_appearance():
    assert unique_in_order(torch.tensor([5, 2, 5, 9, 2, 0])).tolist() == [5, 2, 9, 0]
    assert unique_in_order(torch.tensor([], dtype=torch.long)).tolist() == []


def test_duplicates_across_classes_count_once():
    # Proposal 0 passes in two classes; proposal 1 in one; proposal 2 is below threshold.
    # Three (proposal, class) pairs survive NMS, but only two proposals: not enough for
    # three regions, so the sweep finds no threshold and proposal 2 tops it up.
    probs = probs_from([[0.5, 0.4], [0.3, 0.0], [0.1, 0.05]])
    keep = select_regions(far_boxes(3), probs, SIZE, num_objects=3)
    assert keep.tolist() == [0, 1, 2]
    # With two wanted, both come from the first threshold and appear once each.
    assert select_regions(far_boxes(3), probs, SIZE, num_objects=2).tolist() == [0, 1]


def test_sweep_stops_at_first_threshold_with_enough():
    # A and B overlap with IoU 79/121 = 0.65: B is suppressed at 0.5 and 0.6, kept from 0.7.
    boxes = torch.tensor([[0, 0, 100, 10], [21, 0, 121, 10], [150, 50, 160, 60]],
                         dtype=torch.float32)
    probs = probs_from([[0.9], [0.8], [0.7]])
    # Two regions: 0.5 already leaves A and C, so B (better scored than C) is not taken.
    assert select_regions(boxes, probs, SIZE, num_objects=2).tolist() == [0, 2]
    # Three regions: only 0.7 leaves enough; best score first.
    assert select_regions(boxes, probs, SIZE, num_objects=3).tolist() == [0, 1, 2]


def test_fewer_survivors_than_wanted_are_topped_up_by_score():
    # B almost covers A (IoU 0.95): suppressed at every threshold. C, D are below 0.2.
    boxes = torch.tensor([[0, 0, 100, 50], [0, 0, 100, 47.5], [120, 0, 130, 10],
                          [140, 0, 150, 10]], dtype=torch.float32)
    probs = probs_from([[0.9, 0.0], [0.0, 0.85], [0.05, 0.15], [0.05, 0.0]])
    # Different classes: per-class NMS does not suppress B.
    assert select_regions(boxes, probs, SIZE, num_objects=2).tolist() == [0, 1]
    same_class = probs_from([[0.9, 0.0], [0.85, 0.0], [0.05, 0.15], [0.05, 0.0]])
    keep = select_regions(boxes, same_class, SIZE, num_objects=3)
    assert keep.tolist() == [0, 1, 2]  # A survives; B then C by best score; D left out


def test_all_below_threshold_takes_best_scores():
    fg = [[0.1, 0.05], [0.02, 0.19], [0.15, 0.0], [0.01, 0.01], [0.12, 0.11]]
    keep = select_regions(far_boxes(5), probs_from(fg), SIZE, num_objects=3)
    assert keep.tolist() == [1, 2, 4]
    # The background column never counts as a score.
    probs = probs_from([[0.01, 0.01]] * 4)
    probs[3, -1] = 0.98
    probs[3, 0] = 0.015
    assert select_regions(far_boxes(4), probs, SIZE, num_objects=1).tolist() == [3]


def test_fewer_proposals_than_wanted_returns_all_once():
    fg = [[0.9, 0.0], [0.0, 0.6], [0.3, 0.3], [0.01, 0.0], [0.5, 0.45]]
    keep = select_regions(far_boxes(5), probs_from(fg), SIZE, num_objects=36)
    assert sorted(keep.tolist()) == [0, 1, 2, 3, 4]
    assert keep.tolist()[:4] == [0, 1, 4, 2]  # survivors by score, then the top-up
    empty = select_regions(torch.zeros(0, 4), torch.zeros(0, 3), SIZE)
    assert empty.numel() == 0 and empty.dtype == torch.long


def test_per_class_boxes_are_used_for_their_class():
    # Class 0 boxes of proposals 0 and 1 coincide; their class 1 boxes are far apart.
    boxes = torch.zeros(3, 2, 4)
    boxes[:, 1] = far_boxes(3)
    boxes[0, 0] = boxes[1, 0] = torch.tensor([0, 0, 50, 50])
    boxes[2, 0] = torch.tensor([100, 50, 150, 100])
    probs = probs_from([[0.9, 0.0], [0.8, 0.0], [0.7, 0.0]])
    assert select_regions(boxes, probs, SIZE, num_objects=2).tolist() == [0, 2]
    assert select_regions(boxes[:, 1], probs, SIZE, num_objects=2).tolist() == [0, 1]


def test_exactly_num_objects_on_many_random_proposals():
    gen = torch.Generator().manual_seed(0)
    xy = torch.rand(300, 2, generator=gen) * 150
    boxes = torch.cat((xy, xy + 5 + torch.rand(300, 2, generator=gen) * 60), dim=1)
    probs = torch.softmax(torch.randn(300, 51, generator=gen) * 3, dim=1)
    keep = select_regions(boxes, probs, SIZE, num_objects=36)
    assert keep.numel() == 36 and keep.unique().numel() == 36


def test_selection_rejects_bad_shapes():
    with pytest.raises(ValueError, match="boxes must be"):
        select_regions(torch.zeros(3, 5), probs_from([[0.5]] * 3), SIZE)
    with pytest.raises(ValueError, match="probs must be"):
        select_regions(torch.zeros(3, 4), torch.zeros(3), SIZE)


def test_normalize_boxes_bounds_and_values():
    gen = torch.Generator().manual_seed(1)
    boxes = torch.rand(500, 4, generator=gen) * 600 - 150  # many outside the image
    out = normalize_boxes(boxes, 300, 400)
    assert out.min() >= 0 and out.max() <= 1
    exact = normalize_boxes(torch.tensor([[40.0, 30.0, 200.0, 330.0]]), 300, 400)
    assert torch.allclose(exact, torch.tensor([[0.1, 0.1, 0.5, 1.0]]))
    as_numpy = normalize_boxes(boxes.numpy(), 300, 400)
    assert isinstance(as_numpy, np.ndarray) and as_numpy.dtype == np.float32
    np.testing.assert_allclose(as_numpy, out.numpy(), rtol=1e-6)
    assert as_numpy.min() >= 0 and as_numpy.max() <= 1
    with pytest.raises(ValueError, match="positive"):
        normalize_boxes(boxes, 0, 400)
