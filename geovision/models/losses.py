"""Pairwise segmentation regularisers on softmax outputs: the Potts relaxation and the
normalized cut, with Gaussian affinities over image bands and pixel positions.

Notation: S (B, K, H, W) are softmax outputs, W the affinity between pixels i and j,
d = W 1 the degree of each pixel. Per image,

    Potts  = sum_k S_k' W (1 - S_k) = sum_ij W_ij (1 - S_i . S_j)    (Tang et al., ECCV 2018)
    NC     = sum_k S_k' W (1 - S_k) / (d' S_k)                       (Tang et al., CVPR 2018)

Potts is the soft count of affinity cut by the segmentation (>= 0, 0 for a hard map constant
over the image); NC divides each class's cut by its volume, so it does not depend on the scale of
W. Both are computed on a local window (every pixel with those at most `radius` rows and
columns away; the centre pixel is left out), in pure torch with `F.unfold`, so they run on any
device and autograd gives the gradient (-2 W S for Potts). The affinity is data, built without
gradient: W_ij = exp(-|I_i - I_j|^2 / (2 sigma_rgb^2) - |p_i - p_j|^2 / (2 sigma_xy^2)), the
squared distance summed over every band of `image` (any band count). `dense_gaussian_affinity`
builds the full N x N matrix for small images: the oracle for the local version.

A region of interest (`roi`, (B, H, W) bool) zeroes every affinity that touches a pixel outside
it, so those pixels contribute nothing, whatever their probabilities.

Units. The kernels take `image` in whatever units it comes; the presets give sigma_rgb in units
of images scaled to [0, 1] (the units of a dataset's MEANS and STD_DEVS), converting each
paper's own range: rloss filtered 0-255 images, so its 15 becomes 15/255. A standardised image
(x - mean) / std goes back to those units by multiplying each band by its std (differences
do not see the mean). With more bands than RGB the squared distance grows with the band count;
sigma_rgb is not rescaled for it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal

import torch
import torch.nn.functional as F

Normalize = Literal["pixels", "images"]
NORMALIZE: tuple[str, ...] = ("pixels", "images")


@dataclass(frozen=True)
class Kernel:
    """A Gaussian affinity on a local window: bandwidths in the image's band units and in
    pixels of the full-resolution image; `scale` < 1 computes the term on a downsampled image
    and segmentation (sigma_xy follows), as rloss does to save time."""

    sigma_rgb: float
    sigma_xy: float
    radius: int
    scale: float = 1.0

    def __post_init__(self) -> None:
        if self.sigma_rgb <= 0 or self.sigma_xy <= 0:
            raise ValueError(f"sigma_rgb and sigma_xy must be > 0, got {self.sigma_rgb}, "
                             f"{self.sigma_xy}")
        if self.radius < 1:
            raise ValueError(f"radius must be >= 1, got {self.radius}")
        if not 0 < self.scale <= 1:
            raise ValueError(f"scale must be in (0, 1], got {self.scale}")


@dataclass(frozen=True)
class Preset:
    """Published settings, converted to this module's conventions (see PRESETS)."""

    kernel: Kernel
    weight: float  # the published loss weight, for `normalize`
    normalize: Normalize
    ramp: tuple[float, float] | None  # (start, end) fractions of training, or always on
    source: str


# rloss (meng-tang/rloss, pytorch/README.md and DenseCRFLoss.py): sigma_rgb 15 on 0-255 images,
# sigma_xy 100, the segmentation downscaled by 0.5 (sigma_xy with it), weight 2e-9 on the sum
# over pixel pairs divided by the number of images. Its kernel is dense (a permutohedral
# lattice); here it is cut to an 11 x 11 window at the reduced scale (22 x 22 full-resolution
# pixels), where the spatial factor is nearly 1: a colour-only kernel over the window.
#
# Zorzi and Fraundorfer, IGARSS 2019 (zorzi-s/projectRegularization, crf_loss.py and
# train_gan_net.py): a 9 x 9 window, exp(-d^2 / sigma_X^2) with sigma_X 3 and
# exp(-|dI|^2 / sigma_I^2) with sigma_I 0.1 on [0, 1] images, i.e. no 1/2 in the exponent, so
# our sigmas are theirs / sqrt(2); the loss is a mean over the 81 window entries of every
# pixel, i.e. ours per pixel / 81, so their weight 175 is 175 / 81 here; the weight ramps
# linearly from 0 at batch 60k to 175 at 120k of 140k (3/7 to 6/7 of training).
PRESETS: dict[str, Preset] = {
    "rloss": Preset(Kernel(sigma_rgb=15 / 255, sigma_xy=100.0, radius=5, scale=0.5),
                    weight=2e-9, normalize="images", ramp=None,
                    source="Tang et al., On Regularized Losses for Weakly-supervised CNN "
                           "Segmentation, ECCV 2018 (rloss)"),
    "zorzi": Preset(Kernel(sigma_rgb=0.1 / math.sqrt(2), sigma_xy=3 / math.sqrt(2), radius=4),
                    weight=175 / 81, normalize="pixels", ramp=(3 / 7, 6 / 7),
                    source="Zorzi and Fraundorfer, Regularization of building boundaries in "
                           "satellite images using adversarial and regularized losses, "
                           "IGARSS 2019"),
}


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; presets: {', '.join(PRESETS)}") from None


class LocalAffinity:
    """W on a (2r+1)^2 window: `weights` (B, (2r+1)^2, H*W), entry [b, o, i] the affinity of
    pixel i with pixel i + offset o; zero at the centre, outside the image and outside the ROI.
    Symmetric: the entry of (i, o) equals that of (i + o, -o). Memory: (2r+1)^2 H W floats an
    image."""

    def __init__(self, weights: torch.Tensor, radius: int, shape: tuple[int, int],
                 pixels: torch.Tensor) -> None:
        self.weights = weights
        self.radius = radius
        self.shape = shape
        self.pixels = pixels  # ROI pixels in the batch

    def matmul(self, probs: torch.Tensor) -> torch.Tensor:
        """W S for (B, K, H, W) maps, class by class (one window of copies in memory)."""
        batch, classes = probs.shape[:2]
        size = 2 * self.radius + 1
        out = [(F.unfold(probs[:, k:k + 1], size, padding=self.radius) * self.weights).sum(1)
               for k in range(classes)]
        return torch.stack(out, dim=1).view(batch, classes, *self.shape)

    def degree(self) -> torch.Tensor:
        """d = W 1, (B, H, W)."""
        return self.weights.sum(1).view(-1, *self.shape)


class DenseAffinity:
    """W as a full (B, N, N) matrix, N = H * W: for small images and tests."""

    def __init__(self, matrix: torch.Tensor, shape: tuple[int, int],
                 pixels: torch.Tensor) -> None:
        self.matrix = matrix
        self.shape = shape
        self.pixels = pixels

    def matmul(self, probs: torch.Tensor) -> torch.Tensor:
        batch, classes = probs.shape[:2]
        flat = probs.reshape(batch, classes, -1).transpose(1, 2)
        return torch.bmm(self.matrix, flat).transpose(1, 2).reshape(probs.shape)

    def degree(self) -> torch.Tensor:
        return self.matrix.sum(2).view(-1, *self.shape)


Affinity = LocalAffinity | DenseAffinity


def _roi_or_all(image: torch.Tensor, roi: torch.Tensor | None) -> torch.Tensor:
    batch, _, height, width = image.shape
    if roi is None:
        return torch.ones((batch, height, width), dtype=image.dtype, device=image.device)
    if roi.shape != (batch, height, width):
        raise ValueError(f"roi must be (B, H, W) = {(batch, height, width)}, got "
                         f"{tuple(roi.shape)}")
    return roi.to(image.dtype)


@torch.no_grad()
def gaussian_affinity(image: torch.Tensor, sigma_rgb: float, sigma_xy: float, radius: int,
                      roi: torch.Tensor | None = None) -> LocalAffinity:
    """The Gaussian affinity of each pixel of `image` (B, C, H, W) with its window."""
    batch, bands, height, width = image.shape
    size = 2 * radius + 1
    dist = image.new_zeros((batch, size * size, height * width))
    for band in range(bands):
        plane = image[:, band:band + 1]
        patches = F.unfold(plane, size, padding=radius)
        dist += (patches - plane.reshape(batch, 1, -1)).square_()
    offsets = torch.arange(-radius, radius + 1, dtype=image.dtype, device=image.device)
    spatial = (offsets.view(-1, 1).square() + offsets.view(1, -1).square()).view(-1)
    weights = dist.div_(-2 * sigma_rgb**2).sub_((spatial / (2 * sigma_xy**2)).view(1, -1, 1))
    weights.exp_()
    inside = _roi_or_all(image, roi).unsqueeze(1)
    valid = F.unfold(inside, size, padding=radius) * inside.reshape(batch, 1, -1)
    valid[:, size * size // 2] = 0  # no self-affinity
    return LocalAffinity(weights.mul_(valid), radius, (height, width), inside.sum())


@torch.no_grad()
def dense_gaussian_affinity(image: torch.Tensor, sigma_rgb: float, sigma_xy: float,
                            radius: int | None = None,
                            roi: torch.Tensor | None = None) -> DenseAffinity:
    """The same kernel between every pair of pixels, or (with `radius`) only those at most
    `radius` rows and columns apart: the local version's oracle."""
    batch, bands, height, width = image.shape
    features = image.reshape(batch, bands, -1).transpose(1, 2)
    yy, xx = torch.meshgrid(torch.arange(height, device=image.device),
                            torch.arange(width, device=image.device), indexing="ij")
    pos = torch.stack([yy.reshape(-1), xx.reshape(-1)], dim=1).to(image.dtype)
    colour = torch.cdist(features, features).square()
    spatial = torch.cdist(pos, pos).square()
    matrix = torch.exp(-colour / (2 * sigma_rgb**2) - spatial / (2 * sigma_xy**2))
    keep = ~torch.eye(height * width, dtype=torch.bool, device=image.device)
    if radius is not None:
        keep &= (pos.unsqueeze(0) - pos.unsqueeze(1)).abs().amax(2) <= radius
    inside = _roi_or_all(image, roi).reshape(batch, -1)
    matrix = matrix * keep * inside.unsqueeze(1) * inside.unsqueeze(2)
    return DenseAffinity(matrix, (height, width), inside.sum())


def _check_probs(probs: torch.Tensor, affinity: Affinity) -> None:
    if probs.dim() != 4 or tuple(probs.shape[2:]) != tuple(affinity.shape):
        raise ValueError(f"probs must be (B, K, H, W) with (H, W) = {tuple(affinity.shape)}, "
                         f"got {tuple(probs.shape)}")


def _cuts(probs: torch.Tensor, affinity: Affinity) -> tuple[torch.Tensor, torch.Tensor]:
    """(cut, degree): cut[b, k] = S_k' W (1 - S_k), summed as S_k' (d - W S_k) so every term
    is >= 0 (no cancellation against the constant 1'W1)."""
    _check_probs(probs, affinity)
    degree = affinity.degree().unsqueeze(1)
    cut = (probs * (degree - affinity.matmul(probs))).sum((2, 3))
    return cut, degree


def potts_loss(probs: torch.Tensor, affinity: Affinity,
               normalize: Normalize = "pixels") -> torch.Tensor:
    """The Potts relaxation summed over the batch, divided by the number of ROI pixels
    ("pixels": independent of image size) or of images ("images": rloss's convention)."""
    cut, _ = _cuts(probs, affinity)
    if normalize == "pixels":
        count = affinity.pixels.clamp(min=1)
    elif normalize == "images":
        count = probs.shape[0]
    else:
        raise ValueError(f"normalize must be one of {NORMALIZE}, got {normalize!r}")
    return cut.sum() / count


def normalized_cut_loss(probs: torch.Tensor, affinity: Affinity,
                        eps: float = 1e-6) -> torch.Tensor:
    """Sum over classes of cut / volume, averaged over the images that have an ROI; in
    [0, K). `eps` is relative to the image's total volume, so scaling W changes nothing."""
    cut, degree = _cuts(probs, affinity)
    volume = (probs * degree).sum((2, 3))
    total = degree.sum((1, 2, 3)).unsqueeze(1)
    per_image = (cut / (volume + eps * total).clamp(min=torch.finfo(probs.dtype).tiny)).sum(1)
    present = total.squeeze(1) > 0
    return (per_image * present).sum() / present.sum().clamp(min=1)


REGULARIZERS = {"potts": potts_loss, "normalized_cut": normalized_cut_loss}


def pairwise_loss(kind: str, probs: torch.Tensor, image: torch.Tensor, kernel: Kernel,
                  roi: torch.Tensor | None = None,
                  normalize: Normalize = "pixels") -> torch.Tensor:
    """`kind` ("potts" or "normalized_cut") of `probs` on `kernel`'s affinity over `image`,
    downsampled first when kernel.scale < 1 (image and ROI nearest, probs bilinear)."""
    if kind not in REGULARIZERS:
        raise ValueError(f"unknown regulariser {kind!r}; valid: {', '.join(REGULARIZERS)}")
    if image.shape[0] != probs.shape[0] or image.shape[2:] != probs.shape[2:]:
        raise ValueError(f"image {tuple(image.shape)} and probs {tuple(probs.shape)} must share "
                         "batch size and (H, W)")
    if kernel.scale < 1:
        image = F.interpolate(image, scale_factor=kernel.scale, mode="nearest")
        probs = F.interpolate(probs, scale_factor=kernel.scale, mode="bilinear",
                              align_corners=False)
        if roi is not None:
            roi = F.interpolate(roi[:, None].float(), scale_factor=kernel.scale,
                                mode="nearest")[:, 0] > 0
    affinity = gaussian_affinity(image, kernel.sigma_rgb, kernel.sigma_xy * kernel.scale,
                                 kernel.radius, roi)
    if kind == "potts":
        return potts_loss(probs, affinity, normalize)
    return normalized_cut_loss(probs, affinity)


def linear_ramp(progress: float, start: float, end: float) -> float:
    """A weight factor: 0 until `start`, rising linearly to 1 at `end`, then 1 (progress,
    start and end as fractions of training)."""
    if progress >= end:
        return 1.0
    if progress <= start:
        return 0.0
    return (progress - start) / (end - start)


def partial_cross_entropy(logits: torch.Tensor, target: torch.Tensor,
                          ignore_index: int = -100) -> torch.Tensor:
    """Cross-entropy over the labelled pixels only (scribbles, seeds): pixels marked
    `ignore_index` are left out, and a batch without any labelled pixel gives 0 (not NaN)."""
    if not bool((target != ignore_index).any()):
        return logits.sum() * 0.0
    return F.cross_entropy(logits, target, ignore_index=ignore_index)


def with_overrides(kernel: Kernel, **overrides: float | int | None) -> Kernel:
    """`kernel` with the given fields replaced (None keeps the kernel's value)."""
    return replace(kernel, **{k: v for k, v in overrides.items() if v is not None})
