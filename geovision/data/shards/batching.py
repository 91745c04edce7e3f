"""Whole-batch loading from shards: one read and one transform per batch, no per-sample collate.

A DataLoader normally fetches samples one by one (or as a list) and stacks them; for shards the
stacking copy costs as much as the read. Here the sampler yields a list of indices, the reader
reads them at once (in file order), and the default image transform writes each image straight
into its slot of the batch tensor. The batches are the same tensors the per-sample path gives,
in the same order for the same seed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, SequentialSampler
from torch.utils.data._utils.collate import default_collate

from geovision.data.base import SampleTransform
from geovision.data.transforms import ScaleNormalize


class BatchReader(Protocol):
    sample_transform: Any

    def __len__(self) -> int: ...

    def read_raw_batch(self, indices: Sequence[int], *, views: bool = False
                       ) -> tuple[Sequence[np.ndarray], list, list[int]]: ...


def standardises_only(sample_transform: Any) -> bool:
    """Whether the transform is the default one: ScaleNormalize on the image, nothing that
    looks at image and target together (so a whole batch can be converted at once, and the
    stored images only need to be read)."""
    return (isinstance(sample_transform, SampleTransform)
            and isinstance(sample_transform.image_transform, ScaleNormalize)
            and sample_transform.common_transform is None)


def collate_stored(sample_transform: Any, images: Sequence[np.ndarray], targets: list,
                   df_idx: list[int]) -> tuple[Any, Any, torch.Tensor]:
    """(images, targets, df_idx) batch tensors, equal to collating the transformed samples."""
    if not standardises_only(sample_transform):
        samples = [(*sample_transform(image, target), i) if sample_transform else
                   (image, target, i) for image, target, i in zip(images, targets, df_idx,
                                                                  strict=True)]
        return default_collate(samples)
    batch = sample_transform.image_transform.batch(images)
    target_transform = sample_transform.target_transform
    target = default_collate([target_transform(t) for t in targets])
    return batch, target, torch.tensor(df_idx, dtype=torch.int64)


class _Batches(Dataset):
    """Indexed by a list of positions; returns one collated batch."""

    def __init__(self, reader: BatchReader) -> None:
        self.reader = reader

    def __len__(self) -> int:
        return len(self.reader)

    def __getitem__(self, indices: Sequence[int]) -> tuple[Any, Any, torch.Tensor]:
        transform = self.reader.sample_transform
        # The default transform only reads the stored images: views of them will do.
        raw = self.reader.read_raw_batch(indices, views=standardises_only(transform))
        return collate_stored(transform, *raw)


def batch_loader(reader: BatchReader, batch_size: int, shuffle: bool, seed: int,
                 num_workers: int = 0, drop_last: bool = False) -> DataLoader:
    """A DataLoader over a shard reader that fetches whole batches; with the same seed it
    visits samples in the same order as `DataLoader(reader, shuffle=..., generator=seed)`."""
    generator = torch.Generator().manual_seed(seed)
    sampler = RandomSampler(reader, generator=generator) if shuffle else SequentialSampler(reader)
    # The loader shares the sampler's generator, as DataLoader(shuffle=True) does: it draws the
    # workers' base seed from it first, and the permutation then matches.
    return DataLoader(_Batches(reader), batch_size=None,
                      sampler=BatchSampler(sampler, batch_size, drop_last),
                      num_workers=num_workers, persistent_workers=num_workers > 0,
                      generator=generator)
