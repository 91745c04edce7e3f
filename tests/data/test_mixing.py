"""MixUp and CutMix keep label mass, keep masks one-hot, and repeat for a seed."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from geovision.data.mixing import BatchMixer, cut_box, cutmix, mixup


def batch(seed=0, n=8, classes=5):
    g = torch.Generator().manual_seed(seed)
    images = torch.randn(n, 4, 16, 16, generator=g)
    labels = torch.randint(0, classes, (n,), generator=g)
    masks = F.one_hot(torch.randint(0, classes, (n, 16, 16), generator=g), classes)
    masks = masks.permute(0, 3, 1, 2).float()
    masks[0, :, :4, :4] = 0  # ignored pixels: no class
    return images, labels, masks


@pytest.mark.parametrize("kind", ["mixup", "cutmix", "both"])
def test_classification_soft_labels_sum_to_one(kind):
    images, labels, _ = batch()
    alphas = {"mixup": (0.4, 0.0), "cutmix": (0.0, 1.0), "both": (0.4, 1.0)}[kind]
    mixer = BatchMixer("classification", 5, mixup_alpha=alphas[0], cutmix_alpha=alphas[1],
                       seed=3)
    for _ in range(5):
        mixed, soft = mixer(images, labels)
        assert mixed.shape == images.shape and soft.shape == (8, 5)
        torch.testing.assert_close(soft.sum(dim=1), torch.ones(8))
        assert (soft >= 0).all()
        assert (soft.max(dim=1).values < 1).any()  # something was mixed


@pytest.mark.parametrize("kind", ["mixup", "cutmix"])
def test_multilabel_targets_keep_label_mass_and_stay_weights(kind):
    images, _, _ = batch()
    g = torch.Generator().manual_seed(1)
    multi_hot = (torch.rand(8, 5, generator=g) > 0.5).float()
    alphas = {"mixup": (0.4, 0.0), "cutmix": (0.0, 1.0)}[kind]
    mixer = BatchMixer("multilabel", 5, mixup_alpha=alphas[0], cutmix_alpha=alphas[1], seed=2)
    for _ in range(5):
        mixed, weights = mixer(images, multi_hot)
        assert mixed.shape == images.shape and weights.shape == (8, 5)
        # Each sample is mixed with another of the same batch: per label, the batch's
        # total weight is unchanged, and every weight stays in [0, 1].
        torch.testing.assert_close(weights.sum(dim=0), multi_hot.sum(dim=0))
        assert ((weights >= 0) & (weights <= 1)).all()
        assert ((weights > 0) & (weights < 1)).any()


def test_mixup_blends_images_and_labels_by_the_same_weight():
    images, labels, _ = batch()
    soft = F.one_hot(labels, 5).float()
    perm = torch.arange(8).flip(0)
    mixed, mixed_soft = mixup(images, soft, 0.7, perm)
    torch.testing.assert_close(mixed[0], 0.7 * images[0] + 0.3 * images[7])
    torch.testing.assert_close(mixed_soft[0], 0.7 * soft[0] + 0.3 * soft[7])


def test_cutmix_label_weights_match_pixel_shares():
    images, labels, _ = batch()
    soft = F.one_hot(labels, 5).float()
    perm = torch.roll(torch.arange(8), 1)
    box = (2, 10, 4, 8)  # 8 x 4 = 32 of 256 pixels
    mixed, mixed_soft = cutmix(images, soft, box, perm)
    torch.testing.assert_close(mixed[1, :, 2:10, 4:8], images[0, :, 2:10, 4:8])
    torch.testing.assert_close(mixed[1, :, 10:, :], images[1, :, 10:, :])
    expected = soft[1] * (1 - 32 / 256) + soft[0] * (32 / 256)
    torch.testing.assert_close(mixed_soft[1], expected)


def test_segmentation_cutmix_keeps_masks_one_hot_and_cut_alike():
    images, _, masks = batch()
    mixer = BatchMixer("segmentation", 5, cutmix_alpha=1.0, seed=1)
    for _ in range(5):
        mixed, mixed_masks = mixer(images, masks)
        per_pixel = mixed_masks.sum(dim=1)
        assert set(per_pixel.unique().tolist()) <= {0.0, 1.0}
        assert set(mixed_masks.unique().tolist()) == {0.0, 1.0}
        # Wherever the image came from another sample, so did the mask.
        changed = (mixed != images).any(dim=1)
        mask_changed = (mixed_masks != masks).any(dim=1)
        assert not (mask_changed & ~changed).any()
    # Ignored pixels stay ignored unless covered by a box: the count of unlabelled pixels is
    # conserved across the batch (boxes swap pixels between samples).
    mixed, mixed_masks = BatchMixer("segmentation", 5, cutmix_alpha=1.0, seed=2)(images, masks)
    assert mixed_masks.sum() <= masks.numel() / 5


def test_segmentation_refuses_mixup():
    with pytest.raises(ValueError, match="cutmix_alpha only"):
        BatchMixer("segmentation", 5, mixup_alpha=0.2)


def test_same_seed_same_mixing_and_state_round_trip():
    images, labels, _ = batch()
    first = BatchMixer("classification", 5, mixup_alpha=0.4, cutmix_alpha=1.0, seed=7)
    second = BatchMixer("classification", 5, mixup_alpha=0.4, cutmix_alpha=1.0, seed=7)
    for _ in range(4):
        a, b = first(images, labels), second(images, labels)
        torch.testing.assert_close(a[0], b[0])
        torch.testing.assert_close(a[1], b[1])
    other = BatchMixer("classification", 5, mixup_alpha=0.4, cutmix_alpha=1.0, seed=8)
    assert not torch.equal(other(images, labels)[1], first(images, labels)[1])
    state = first.state_dict()
    expected = first(images, labels)
    first.load_state_dict(state)
    torch.testing.assert_close(first(images, labels)[1], expected[1])


def test_prob_zero_leaves_batches_alone():
    images, labels, _ = batch()
    mixed, soft = BatchMixer("classification", 5, mixup_alpha=1.0, prob=0.0)(images, labels)
    assert torch.equal(mixed, images)
    assert torch.equal(soft, F.one_hot(labels, 5).float())


def test_cut_box_area_follows_lambda():
    rng = np.random.default_rng(0)
    areas = []
    for _ in range(200):
        y0, y1, x0, x1 = cut_box(100, 100, 0.75, rng)
        assert 0 <= y0 <= y1 <= 100 and 0 <= x0 <= x1 <= 100
        areas.append((y1 - y0) * (x1 - x0))
    assert max(areas) == 2500  # the unclipped box: (sqrt(0.25) * 100) ** 2
    assert min(areas) < 2500   # clipped at a border
