"""Multi-process training with torch.distributed, as started by ``torchrun``.

Without torchrun (no ``WORLD_SIZE`` in the environment, or 1) nothing here does anything
and training runs in one process exactly as before.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistributedContext:
    """Where this process stands: its rank among ``world_size`` and its device."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0 writes checkpoints, metrics and logs."""
        return self.rank == 0


def world_from_environment() -> tuple[int, int, int]:
    """(rank, local_rank, world_size) as torchrun sets them; (0, 0, 1) otherwise."""
    return (
        int(os.environ.get("RANK", 0)),
        int(os.environ.get("LOCAL_RANK", 0)),
        int(os.environ.get("WORLD_SIZE", 1)),
    )


def is_main_process() -> bool:
    return world_from_environment()[0] == 0


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto`` picks CUDA when present; asking for CUDA where there is none is an error.

    Under torchrun each process takes the GPU of its local rank.
    """
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device '{name}' requested but no CUDA device is visible")
        if device.index is None:
            device = torch.device("cuda", local_rank % torch.cuda.device_count())
    return device


@contextmanager
def distributed(device_name: str, timeout_s: float = 300) -> Iterator[DistributedContext]:
    """Join the process group torchrun set up (NCCL on CUDA, gloo on CPU) and leave it on exit.

    The group is destroyed even when training raises, so a failing rank ends its process
    instead of leaving the others waiting; torchrun then stops the rest.
    """
    rank, local_rank, world_size = world_from_environment()
    device = resolve_device(device_name, local_rank)
    if world_size == 1:
        yield DistributedContext(device=device)
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend=backend, timeout=timedelta(seconds=timeout_s))
    try:
        yield DistributedContext(rank, local_rank, world_size, device)
        # Leave together: a rank that tears its group down while another still talks to it can
        # abort at exit ("terminate called without an active exception") after a good run.
        dist.barrier()
    finally:
        dist.destroy_process_group()


def distributed_world_size() -> int:
    """The number of processes in the current process group (1 without one)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def all_reduce_sum(values: list[float], device: torch.device) -> list[float]:
    """Sum each value over every process (no-op in a single process)."""
    if not (dist.is_available() and dist.is_initialized()):
        return values
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.tolist()


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def broadcast_from_main(value: Any) -> Any:
    """Rank 0's ``value`` on every process (any picklable object; itself in a single process).

    Broadcast an exception to make every rank raise it: a rank left waiting would hang the run.
    """
    if not (dist.is_available() and dist.is_initialized()):
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]
