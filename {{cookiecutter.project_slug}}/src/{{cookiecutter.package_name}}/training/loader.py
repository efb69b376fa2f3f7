"""Seeded data loaders whose order depends only on the seed and the epoch."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from .seed import seed_worker


def make_loader(
    dataset: Dataset,
    batch_size: int,
    *,
    shuffle: bool,
    seed: int,
    num_workers: int = 0,
    num_replicas: int = 1,
    rank: int = 0,
    collate_fn: Callable[[list[Any]], Any] | None = None,
) -> DataLoader:
    """A loader whose order depends only on ``seed`` and the epoch.

    Shuffling goes through a DistributedSampler (also in a single process), so call
    ``loader.sampler.set_epoch(epoch)`` at the start of each epoch: the order of epoch k is
    then the same whether training ran straight through or was resumed, and in a single
    process or split across ranks.
    """
    sampler = DistributedSampler(
        dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed, drop_last=False
    )
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        worker_init_fn=seed_worker,
        generator=generator,
        collate_fn=collate_fn,
    )
