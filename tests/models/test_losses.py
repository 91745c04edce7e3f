"""Potts and normalized-cut losses: gradients, the dense oracle, invariants, ROI masks, the
published presets, and what the Potts term does to a model trained on noisy labels."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import ndimage

from geovision.models.losses import (
    PRESETS,
    Kernel,
    dense_gaussian_affinity,
    gaussian_affinity,
    get_preset,
    linear_ramp,
    normalized_cut_loss,
    pairwise_loss,
    partial_cross_entropy,
    potts_loss,
)

LOSSES = {"potts": potts_loss, "normalized_cut": normalized_cut_loss}


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors: threads only add overhead (and the toy run must stay short)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _inputs(bands=3, classes=3, height=6, width=7, seed=0, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    image = torch.rand((2, bands, height, width), generator=gen, dtype=dtype)
    logits = torch.randn((2, classes, height, width), generator=gen, dtype=dtype)
    roi = torch.rand((2, height, width), generator=gen) > 0.25
    return image, logits, roi


@pytest.mark.parametrize("name", LOSSES)
def test_gradcheck_in_float64(name):
    image, logits, roi = _inputs(height=4, width=5)
    affinity = gaussian_affinity(image, 0.4, 2.0, radius=2, roi=roi)
    logits.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: LOSSES[name](x.softmax(1), affinity), (logits,))


@pytest.mark.parametrize("name", LOSSES)
@pytest.mark.parametrize(("radius", "bands"), [(1, 3), (2, 1), (2, 13), (3, 4)])
def test_local_window_equals_the_dense_oracle(name, radius, bands):
    image, logits, roi = _inputs(bands=bands)
    probs = logits.softmax(1)
    local = gaussian_affinity(image, 0.5, 1.5, radius, roi)
    dense = dense_gaussian_affinity(image, 0.5, 1.5, radius, roi)
    assert LOSSES[name](probs, local).item() == pytest.approx(
        LOSSES[name](probs, dense).item(), rel=1e-12)


def test_losses_match_their_formulas_on_the_full_dense_kernel():
    image, logits, roi = _inputs()
    probs = logits.softmax(1)
    dense = dense_gaussian_affinity(image, 0.5, 1.5, roi=roi)
    potts, ncut = 0.0, 0.0
    for b in range(2):
        w = dense.matrix[b]
        s = probs[b].reshape(3, -1)
        potts += (w * (1 - s.T @ s)).sum()  # sum_ij W_ij (1 - S_i . S_j)
        d = w.sum(1)
        ncut += sum((s[k] @ w @ (1 - s[k])) / (d @ s[k]) for k in range(3)) / 2
    assert potts_loss(probs, dense).item() == pytest.approx(potts.item() / roi.sum().item())
    assert potts_loss(probs, dense, normalize="images").item() == pytest.approx(potts.item() / 2)
    assert normalized_cut_loss(probs, dense).item() == pytest.approx(ncut.item(), rel=1e-5)


def test_gaussian_kernel_between_two_pixels():
    image = torch.zeros((1, 2, 5, 5), dtype=torch.float64)
    image[0, :, 3, 4] = torch.tensor([0.3, -0.1])
    affinity = gaussian_affinity(image, sigma_rgb=0.2, sigma_xy=1.5, radius=2)
    # pixel (1, 3) and pixel (3, 4): offset (+2, +1)
    offset = (2 + 2) * 5 + (1 + 2)
    expected = math.exp(-(0.09 + 0.01) / (2 * 0.2**2) - 5 / (2 * 1.5**2))
    assert affinity.weights[0, offset, 1 * 5 + 3].item() == pytest.approx(expected)
    assert (affinity.weights[0, 12] == 0).all()  # the centre: no self-affinity
    assert affinity.weights[0, :, 0].count_nonzero() == 8  # a corner sees 3 x 3 - 1 pixels


def test_potts_is_zero_on_a_constant_one_hot_map_and_positive_otherwise():
    image, logits, _ = _inputs()
    affinity = gaussian_affinity(image, 0.5, 1.5, 2)
    constant = torch.zeros_like(logits)
    constant[:, 1] = 1
    assert potts_loss(constant, affinity).item() == 0.0
    assert normalized_cut_loss(constant, affinity).item() == 0.0
    assert potts_loss(logits.softmax(1), affinity).item() > 0
    split = torch.zeros_like(logits)
    split[:, 0, :, :3] = 1
    split[:, 2, :, 3:] = 1
    assert potts_loss(split, affinity).item() > 0


def test_normalized_cut_is_invariant_to_scaling_the_affinities():
    image, logits, roi = _inputs()
    probs = logits.softmax(1)
    affinity = gaussian_affinity(image, 0.5, 1.5, 2, roi)
    value = normalized_cut_loss(probs, affinity).item()
    assert 0 < value < 3  # in [0, K)
    for factor in (1e-3, 7.3, 1e4):
        affinity_scaled = gaussian_affinity(image, 0.5, 1.5, 2, roi)
        affinity_scaled.weights *= factor
        assert normalized_cut_loss(probs, affinity_scaled).item() == pytest.approx(value,
                                                                                   rel=1e-12)
    doubled = gaussian_affinity(image, 0.5, 1.5, 2, roi)
    doubled.weights *= 2
    assert potts_loss(probs, doubled).item() == pytest.approx(
        2 * potts_loss(probs, affinity).item())  # Potts, by contrast, scales with W


@pytest.mark.parametrize("name", LOSSES)
def test_pixels_outside_the_roi_contribute_nothing(name):
    image, logits, roi = _inputs()
    affinity = gaussian_affinity(image, 0.5, 1.5, 2, roi)
    logits.requires_grad_(True)
    loss = LOSSES[name](logits.softmax(1), affinity)
    loss.backward()
    outside = ~roi.unsqueeze(1).expand_as(logits)
    assert (logits.grad[outside] == 0).all() and (logits.grad[~outside] != 0).any()
    changed = logits.detach().clone()
    changed[outside] = torch.randn(int(outside.sum()), dtype=changed.dtype) * 5
    assert LOSSES[name](changed.softmax(1), affinity).item() == pytest.approx(loss.item(),
                                                                              rel=1e-12)
    nothing = gaussian_affinity(image, 0.5, 1.5, 2, torch.zeros_like(roi))
    assert LOSSES[name](logits.softmax(1), nothing).item() == 0.0


def test_presets_hold_the_published_settings():
    rloss, zorzi = get_preset("rloss"), get_preset("zorzi")
    assert rloss.kernel.sigma_rgb * 255 == pytest.approx(15) and rloss.kernel.sigma_xy == 100
    assert rloss.kernel.scale == 0.5 and rloss.weight == 2e-9 and rloss.normalize == "images"
    assert 2 * zorzi.kernel.radius + 1 == 9 and zorzi.ramp == pytest.approx((60 / 140, 120 / 140))
    # Zorzi's kernel, exp(-d^2 / 3^2 - |dI|^2 / 0.1^2) on [0, 1] images, and his weight 175 on
    # the mean over the 81 window entries of each pixel.
    image = torch.zeros((1, 1, 9, 9), dtype=torch.float64)
    image[0, 0, 6, 5] = 0.05
    kernel = zorzi.kernel
    affinity = gaussian_affinity(image, kernel.sigma_rgb, kernel.sigma_xy, kernel.radius)
    offset = (2 + 4) * 9 + (1 + 4)  # from (4, 4) to (6, 5)
    expected = math.exp(-5 / 3.0**2 - 0.05**2 / 0.1**2)
    assert affinity.weights[0, offset, 4 * 9 + 4].item() == pytest.approx(expected)
    assert zorzi.weight * 81 == pytest.approx(175)
    with pytest.raises(ValueError, match="presets: rloss, zorzi"):
        get_preset("densecrf")
    assert set(PRESETS) == {"rloss", "zorzi"}


def test_scale_computes_the_term_on_the_downsampled_image():
    image, logits, roi = _inputs(height=8, width=8)
    probs = logits.softmax(1)
    kernel = Kernel(sigma_rgb=0.5, sigma_xy=4.0, radius=1, scale=0.5)
    small_image = image[:, :, ::2, ::2]
    small_probs = F.interpolate(probs, scale_factor=0.5, mode="bilinear", align_corners=False)
    expected = potts_loss(small_probs, gaussian_affinity(small_image, 0.5, 2.0, 1))
    assert pairwise_loss("potts", probs, image, kernel).item() == pytest.approx(expected.item())
    assert pairwise_loss("potts", probs, image, kernel, roi=roi).item() > 0
    with pytest.raises(ValueError, match="valid: potts, normalized_cut"):
        pairwise_loss("dense_crf", probs, image, kernel)


def test_linear_ramp():
    assert [linear_ramp(p, 0.25, 0.75) for p in (0, 0.25, 0.5, 0.75, 1)] == [0, 0, 0.5, 1, 1]
    assert linear_ramp(0.0, 0.0, 0.0) == 1.0  # no ramp: on from the start


def test_partial_cross_entropy_uses_only_labelled_pixels():
    gen = torch.Generator().manual_seed(1)
    logits = torch.randn((2, 3, 4, 4), generator=gen, requires_grad=True)
    target = torch.randint(0, 3, (2, 4, 4), generator=gen)
    scribbles = target.clone()
    scribbles[:, 1:] = -100
    loss = partial_cross_entropy(logits, scribbles)
    labelled = logits.permute(0, 2, 3, 1)[:, 0].reshape(-1, 3)
    assert loss.item() == pytest.approx(F.cross_entropy(labelled, target[:, 0].reshape(-1)).item())
    loss.backward()
    assert (logits.grad[:, :, 1:] == 0).all()
    nothing = partial_cross_entropy(logits, torch.full_like(target, 255), ignore_index=255)
    assert nothing.item() == 0.0 and nothing.requires_grad


# A toy scene: background, a roof-like rectangle and a vegetation-like ellipse, colours with
# noise; 20 % of the training labels flipped to another class at random. The same U-Net, seed,
# optimiser and steps are trained with cross-entropy alone and with cross-entropy + Potts on
# the noisy labels; predictions are scored against the clean truth (3 components).
def _toy_scene(size=32, flip=0.2, noise=0.1, seed=0):
    gen = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(size) / size, torch.arange(size) / size, indexing="ij")
    truth = torch.zeros((size, size), dtype=torch.long)
    truth[((yy - 0.62) / 0.25) ** 2 + ((xx - 0.3) / 0.2) ** 2 <= 1] = 2
    truth[(yy >= 0.12) & (yy < 0.42) & (xx >= 0.5) & (xx < 0.88)] = 1
    colours = torch.tensor([[0.6, 0.5, 0.4], [0.85, 0.8, 0.75], [0.2, 0.45, 0.2]])
    image = colours[truth].permute(2, 0, 1) + noise * torch.randn((3, size, size), generator=gen)
    labels = truth.clone()
    flips = torch.rand((size, size), generator=gen) < flip
    labels[flips] = (truth[flips] + torch.randint(1, 3, (int(flips.sum()),), generator=gen)) % 3
    return image[None], truth.numpy(), labels[None]


def _components(prediction: np.ndarray) -> int:
    return sum(ndimage.label(prediction == k)[1] for k in np.unique(prediction))


def _fit(image, labels, potts_weight, steps=200):
    from geovision.models.small import SmallUNet

    torch.manual_seed(0)
    model = SmallUNet(3, 3, width=8)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    affinity = gaussian_affinity(image, sigma_rgb=0.3, sigma_xy=3.0, radius=3)
    for _ in range(steps):
        logits = model(image)
        loss = F.cross_entropy(logits, labels)
        if potts_weight:
            loss = loss + potts_weight * potts_loss(logits.softmax(1), affinity)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        return model.eval()(image).argmax(1)[0].numpy()


def test_potts_term_defragments_a_model_trained_on_noisy_labels():
    image, truth, labels = _toy_scene()
    plain = _fit(image, labels, potts_weight=0.0)
    regularised = _fit(image, labels, potts_weight=0.3)
    assert _components(truth) == 3
    noisy_accuracy = (labels[0].numpy() == truth).mean()
    plain_accuracy, regularised_accuracy = (plain == truth).mean(), (regularised == truth).mean()
    # Cross-entropy alone learns the flipped labels; with Potts the regions come back whole.
    assert plain_accuracy < noisy_accuracy + 0.05
    assert _components(plain) >= 10 * _components(regularised)
    assert regularised_accuracy >= plain_accuracy and regularised_accuracy > 0.95
