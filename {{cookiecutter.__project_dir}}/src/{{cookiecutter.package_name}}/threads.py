"""How many CPU threads torch's maths uses in this process.

torch starts one thread per core, and its threads wait for work by spinning. Beside anything
else that wants the CPUs (DataLoader workers, a second torchrun process, a test run, another
job) they take turns with it, and a small model trains several times slower than on one
thread. So the default here leaves room: half the CPUs this process may use (its CPU
affinity and its container's CPU quota), shared among the processes torchrun starts on this
machine, and at least one. ``OMP_NUM_THREADS``, where set, and ``--threads`` override it.
``nox -s threads`` measures the default against torch's, idle and beside a CPU load.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

# Where a container's CPU quota is written (cgroup v2): "<quota> <period>", or "max <period>".
CPU_QUOTA = Path("/sys/fs/cgroup/cpu.max")


def usable_cpus() -> int:
    """The CPUs this process may run on: its affinity, lowered to its container's quota."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        quota, period = CPU_QUOTA.read_text().split()[:2]
        if quota != "max":
            cpus = min(cpus, max(1, int(quota) // int(period)))
    except (OSError, ValueError):
        pass
    return max(1, cpus)


def default_threads() -> int:
    """Half the usable CPUs, shared among torchrun's local processes (``LOCAL_WORLD_SIZE``); at least one."""
    local = os.environ.get("LOCAL_WORLD_SIZE", "1")
    processes = int(local) if local.isdigit() and int(local) > 0 else 1
    return max(1, usable_cpus() // processes // 2)


def set_threads(threads: int | None = None) -> int:
    """Use ``threads`` CPU threads for torch's maths (None: ``OMP_NUM_THREADS`` where it is set,
    else ``default_threads()``); return how many. Fewer than one is a ValueError."""
    if threads is None:
        given = os.environ.get("OMP_NUM_THREADS", "")
        threads = int(given) if given.isdigit() and int(given) > 0 else default_threads()
    if threads < 1:
        raise ValueError(f"--threads must be at least 1, got {threads}")
    torch.set_num_threads(threads)
    return threads
