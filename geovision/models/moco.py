"""MoCo: contrastive pretraining with a momentum encoder and a queue of negative keys.

The query encoder learns; the key encoder follows it as an exponential moving average, so the
keys in the queue stay consistent over many batches. The InfoNCE loss asks each query to pick
its own key (the other view of the same image) out of the queue.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from geovision.models.registry import register_model
from geovision.models.small import SmallCNN


@register_model(("moco",), name="small_moco")
class SmallMoCo(nn.Module):
    """A SmallCNN backbone with an MLP projection head, its momentum copy and the key queue."""

    def __init__(self, in_channels: int, width: int = 16, depth: int = 3, hidden: int = 128,
                 dim: int = 64, queue_size: int = 1024, momentum: float = 0.9,
                 temperature: float = 0.2) -> None:
        super().__init__()
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum {momentum} must be in [0, 1).")
        self.momentum = momentum
        self.temperature = temperature
        self.encoder = nn.Sequential(SmallCNN(in_channels, hidden, width, depth, dropout=0.0),
                                     nn.ReLU(inplace=True), nn.Linear(hidden, dim))
        self.momentum_encoder = copy.deepcopy(self.encoder)
        self.momentum_encoder.requires_grad_(False)
        self.register_buffer("queue", F.normalize(torch.randn(queue_size, dim), dim=1))
        self.register_buffer("queue_pointer", torch.zeros((), dtype=torch.long))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """L2-normalised embeddings from the query encoder (what downstream tasks reuse)."""
        return F.normalize(self.encoder(x), dim=1)

    @torch.no_grad()
    def update_momentum_encoder(self) -> None:
        for key, query in zip(self.momentum_encoder.parameters(), self.encoder.parameters(),
                              strict=True):
            key.mul_(self.momentum).add_(query.detach(), alpha=1 - self.momentum)
        for key, query in zip(self.momentum_encoder.buffers(), self.encoder.buffers(),
                              strict=True):
            key.copy_(query)

    def contrastive_logits(self, queries: torch.Tensor,
                           keys_view: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits, keys): column 0 holds each query's positive key, the rest the queue."""
        q = self(queries)
        with torch.no_grad():
            k = F.normalize(self.momentum_encoder(keys_view), dim=1)
        positive = (q * k).sum(dim=1, keepdim=True)
        negative = q @ self.queue.clone().detach().T
        return torch.cat([positive, negative], dim=1) / self.temperature, k

    def batch_logits(self, queries: torch.Tensor, keys_view: torch.Tensor) -> torch.Tensor:
        """Each query against every key of the batch (its own on the diagonal): a measure that
        does not depend on what the queue holds, for comparing checkpoints."""
        q = self(queries)
        k = F.normalize(self.momentum_encoder(keys_view), dim=1)
        return q @ k.T / self.temperature

    @torch.no_grad()
    def enqueue(self, keys: torch.Tensor) -> None:
        """Replace the oldest keys in the queue with `keys`."""
        size = self.queue.shape[0]
        keys = keys[-size:]
        slots = (self.queue_pointer + torch.arange(keys.shape[0], device=keys.device)) % size
        self.queue[slots] = keys.to(self.queue.dtype)
        self.queue_pointer.copy_((self.queue_pointer + keys.shape[0]) % size)


def info_nce(logits: torch.Tensor, positives: torch.Tensor | None = None) -> torch.Tensor:
    """Cross entropy with each row's positive key in column 0, or in column `positives[i]`."""
    if positives is None:
        positives = torch.zeros(logits.shape[0], dtype=torch.long, device=logits.device)
    return F.cross_entropy(logits, positives)
