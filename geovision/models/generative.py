"""Small generative models for pretraining on unlabeled imagery: a DCGAN-style GAN and a VAE.

Both work on images standardised per band (roughly zero mean, unit variance), so their outputs
are linear (no tanh) and any band count is accepted.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from geovision.models.registry import register_model


def _check_size(image_size: int, depth: int) -> int:
    if image_size % 2**depth:
        raise ValueError(f"image_size {image_size} must be divisible by 2**depth = {2**depth}; "
                         "lower the model's depth or tile the images to a multiple of it.")
    return image_size // 2**depth


class Generator(nn.Module):
    """Latent vector -> (C, size, size) image: a projection, then `depth` x2 upsamplings."""

    def __init__(self, out_channels: int, image_size: int, latent_dim: int, width: int,
                 depth: int) -> None:
        super().__init__()
        self.start = _check_size(image_size, depth)
        self.channels = width * 2 ** (depth - 1)
        self.project = nn.Sequential(
            nn.Linear(latent_dim, self.channels * self.start**2, bias=False),
            nn.Unflatten(1, (self.channels, self.start, self.start)),
            nn.BatchNorm2d(self.channels), nn.ReLU(inplace=True))
        layers: list[nn.Module] = []
        channels = self.channels
        for i in range(depth):
            out = width * 2 ** max(depth - 2 - i, 0)
            layers += [nn.ConvTranspose2d(channels, out, 4, stride=2, padding=1, bias=False),
                       nn.BatchNorm2d(out), nn.ReLU(inplace=True)]
            channels = out
        layers.append(nn.Conv2d(channels, out_channels, 3, padding=1))
        self.body = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.body(self.project(z))


class Discriminator(nn.Module):
    """(C, size, size) image -> one real/fake logit."""

    def __init__(self, in_channels: int, image_size: int, width: int, depth: int) -> None:
        super().__init__()
        end = _check_size(image_size, depth)
        layers: list[nn.Module] = []
        channels = in_channels
        for i in range(depth):
            out = width * 2**i
            layers += [nn.Conv2d(channels, out, 4, stride=2, padding=1, bias=i == 0)]
            if i > 0:
                layers.append(nn.BatchNorm2d(out))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            channels = out
        layers += [nn.Flatten(), nn.Linear(channels * end * end, 1)]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).squeeze(1)


@register_model(("gan",), name="small_gan")
class SmallGAN(nn.Module):
    """A generator and a discriminator; the GAN workflow trains them against each other."""

    def __init__(self, in_channels: int, image_size: int, latent_dim: int = 64, width: int = 32,
                 depth: int = 3) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.generator = Generator(in_channels, image_size, latent_dim, width, depth)
        self.discriminator = Discriminator(in_channels, image_size, width, depth)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Generated images for latent vectors `z` (B, latent_dim)."""
        return self.generator(z)


@register_model(("vae",), name="small_vae")
class SmallVAE(nn.Module):
    """Convolutional variational autoencoder with a Gaussian latent.

    `loss` is the negative ELBO per pixel: squared reconstruction error plus `beta` times the
    KL divergence from the unit Gaussian, both divided by the pixels of one image.
    """

    def __init__(self, in_channels: int, image_size: int, latent_dim: int = 32, width: int = 16,
                 depth: int = 3, beta: float = 1.0) -> None:
        super().__init__()
        end = _check_size(image_size, depth)
        self.beta = beta
        layers: list[nn.Module] = []
        channels = in_channels
        for i in range(depth):
            out = width * 2**i
            layers += [nn.Conv2d(channels, out, 4, stride=2, padding=1, bias=False),
                       nn.BatchNorm2d(out), nn.LeakyReLU(0.2, inplace=True)]
            channels = out
        self.encoder = nn.Sequential(*layers, nn.Flatten())
        self.to_latent = nn.Linear(channels * end * end, 2 * latent_dim)
        self.decoder = Generator(in_channels, image_size, latent_dim, width, depth)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.to_latent(self.encoder(x)).chunk(2, dim=1)
        return mu, logvar.clamp(-10, 10)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(reconstruction, mu, logvar); samples the latent in training, uses the mean in eval."""
        mu, logvar = self.encode(x)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp() if self.training else mu
        return self.decode(z), mu, logvar

    def loss(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(loss, reconstruction term, KL term), each averaged over the batch, per pixel."""
        recon, mu, logvar = self(x)
        pixels = x[0].numel()
        reconstruction = F.mse_loss(recon, x, reduction="sum") / (x.shape[0] * pixels)
        kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum() / (x.shape[0] * pixels)
        return reconstruction + self.beta * kl, reconstruction, kl
