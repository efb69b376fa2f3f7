"""Seeded data loaders whose batches depend only on the seed and the epoch, never on the process count."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sized
from typing import Any, cast

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from .seed import seed_worker

# The most DataLoader worker processes the automatic setting starts per training process.
MAX_WORKERS = 4


def worker_count(requested: int) -> int:
    """``requested`` worker processes; for -1, two CPUs fewer than this process's share of the CPUs it
    may use (shared among the training processes on this machine, torchrun's ``LOCAL_WORLD_SIZE``),
    at most ``MAX_WORKERS``. The two are the training process's own: on two CPUs a worker only
    competes with the training for them (measured: the default image run 1.3x slower with one)."""
    if requested >= 0:
        return requested
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    processes = max(int(os.environ.get("LOCAL_WORLD_SIZE", 1)), 1)
    return max(0, min(MAX_WORKERS, cpus // processes - 2))


class GlobalBatchSampler(Sampler[list[int]]):
    """Each process's share of every global batch; every row exactly once per epoch.

    The rows are shuffled with a generator seeded by ``seed + epoch`` (``set_epoch``) and cut
    into ``ceil(rows / batch_size)`` global batches whose sizes differ by at most one. Process
    ``rank`` of ``num_replicas`` takes every ``num_replicas``-th row of each global batch. So
    one process and N processes step through the same global batches, no row is repeated to
    even out the shares (as DistributedSampler's padding does), and none is dropped.
    """

    def __init__(
        self, rows: int, batch_size: int, *, shuffle: bool, seed: int, num_replicas: int = 1, rank: int = 0
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.rows, self.batch_size, self.shuffle, self.seed = rows, batch_size, shuffle, seed
        self.num_replicas, self.rank, self.epoch = num_replicas, rank, 0
        batches = -(-rows // batch_size)
        if batches and rows // batches < num_replicas:
            raise ValueError(
                f"{rows} rows in batches of {batch_size} leave a batch of {rows // batches} rows, "
                f"fewer than the {num_replicas} processes: use fewer processes or a larger batch"
            )
        self.sizes = [rows // batches + (i < rows % batches) for i in range(batches)]  # none for no rows

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.sizes)

    def global_batches(self) -> list[list[int]]:
        """This epoch's global batches: row positions, the same in every process."""
        if self.shuffle:
            order = torch.randperm(self.rows, generator=torch.Generator().manual_seed(self.seed + self.epoch))
        else:
            order = torch.arange(self.rows)
        batches, start = [], 0
        for size in self.sizes:
            batches.append(order[start : start + size].tolist())
            start += size
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self.global_batches():
            yield batch[self.rank :: self.num_replicas]


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
    persistent: bool = False,
    pin_memory: bool = False,
) -> DataLoader:
    """A loader of this process's share of global batches of ``batch_size`` rows.

    Call ``loader.batch_sampler.set_epoch(epoch)`` at the start of each epoch: the order of
    epoch k is then the same whether training ran straight through or was resumed, and in a
    single process or split across ranks. With ``num_workers`` the items are read and decoded
    in that many worker processes (kept from epoch to epoch when ``persistent``), each batch a
    dataset's ``__getitems__`` call; ``pin_memory`` speeds copies to a CUDA device.
    """
    sampler = GlobalBatchSampler(
        len(cast(Sized, dataset)), batch_size, shuffle=shuffle, seed=seed, num_replicas=num_replicas, rank=rank
    )
    return DataLoader(
        dataset,
        batch_sampler=sampler,
        num_workers=num_workers,
        worker_init_fn=seed_worker,
        generator=torch.Generator().manual_seed(seed),
        collate_fn=collate_fn,
        persistent_workers=persistent and num_workers > 0,
        pin_memory=pin_memory,
    )
