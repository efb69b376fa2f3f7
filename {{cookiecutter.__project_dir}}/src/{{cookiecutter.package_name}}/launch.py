"""Launching torchrun from Python, for the tests of several processes and machines (the
``distributed`` and ``gpu`` tiers) and for scripts: a local rendezvous, several launchers that
meet as machines would, and a launcher that cannot outlive its timeout or leave a rank behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Launcher", "free_port", "node_options", "run_torchrun", "run_torchrun_nodes", "start_torchrun"]


def run_torchrun(*args: str, processes: int, cwd: str | Path, timeout: float) -> subprocess.CompletedProcess:
    """``torchrun --standalone --nproc-per-node=N ARGS``: one machine, a local rendezvous on a free port.

    A run that outlives ``timeout`` is stopped, workers included, and an AssertionError says a
    rank hung, so no process is left behind; see ``start_torchrun`` for where its files go.
    """
    return start_torchrun("--standalone", f"--nproc-per-node={processes}", *args, cwd=cwd).finish(timeout)


def run_torchrun_nodes(
    *args: str, nodes: int, processes: int, cwd: str | Path, timeout: float
) -> list[subprocess.CompletedProcess]:
    """``nodes`` torchrun launchers on this machine, started the way ``nodes`` machines would be.

    Each runs ``torchrun --nnodes=NODES --nproc-per-node=N`` with a c10d rendezvous on a free
    local port, as the README's multi-node command does on a cluster, and gets the result of
    each; a launcher that outlives ``timeout`` is stopped as in ``run_torchrun``.
    """
    options = node_options(nodes, processes, f"localhost:{free_port()}")
    launchers = [start_torchrun(*options, *args, cwd=cwd) for _ in range(nodes)]
    deadline = time.monotonic() + timeout
    try:
        return [launcher.finish(max(deadline - time.monotonic(), 0)) for launcher in launchers]
    finally:
        for launcher in launchers:
            launcher.stop()


def node_options(nodes: int, processes: int, endpoint: str, join_timeout: float = 60) -> list[str]:
    """torchrun's options for one of ``nodes`` machines that meet at ``endpoint`` (``host:port``).

    Give every node of a run the same options. A node that waits ``join_timeout`` seconds for
    the others stops with a RendezvousTimeoutError.
    """
    return [
        f"--nnodes={nodes}",
        f"--nproc-per-node={processes}",
        "--rdzv-backend=c10d",
        f"--rdzv-endpoint={endpoint}",
        f"--rdzv-id=run-{endpoint.rpartition(':')[2]}",
        f"--rdzv-conf=join_timeout={join_timeout}",
    ]


def free_port() -> int:
    """A TCP port on this machine that nothing listens on, for a rendezvous endpoint."""
    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        return probe.getsockname()[1]


@dataclass
class Launcher:
    """A torchrun started by ``start_torchrun``: the process, its command and its folder."""

    process: subprocess.Popen
    command: list[str]
    folder: Path

    def finish(self, timeout: float) -> subprocess.CompletedProcess:
        """Wait for torchrun to end; one that outlives ``timeout`` is stopped and an AssertionError raised."""
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise AssertionError(
                f"`{' '.join(self.command)}` still running after {timeout:.0f} s: a rank is hanging\n"
                f"{self.output('stderr')[-3000:]}"
            ) from None
        return subprocess.CompletedProcess(
            self.command, self.process.returncode, self.output("stdout"), self.output("stderr")
        )

    def stop(self) -> None:
        """End torchrun and its workers; nothing happens to one that has ended.

        torchrun starts each worker in a session of its own, out of reach of a signal to the
        launcher's group: SIGTERM asks torchrun to stop them first, SIGKILL follows if it does not.
        """
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):  # the group is already gone
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def output(self, stream: str) -> str:
        return (self.folder / f"{stream}.txt").read_text(errors="replace")


def start_torchrun(*args: str, cwd: str | Path) -> Launcher:
    """Start ``torchrun ARGS`` from ``cwd``, one thread per worker.

    Its output and its temporary files (torchelastic's log folders) go to a new folder
    ``torchrun-*`` under ``cwd``, not to the system's temporary folder; output goes to files,
    so that a chatty rank can never block on a full pipe.
    """
    folder = Path(tempfile.mkdtemp(prefix="torchrun-", dir=cwd))
    command = [sys.executable, "-m", "torch.distributed.run", *args]
    with (folder / "stdout.txt").open("w") as stdout, (folder / "stderr.txt").open("w") as stderr:
        process = subprocess.Popen(
            command,
            cwd=cwd,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
            env={**os.environ, "OMP_NUM_THREADS": "1", "TMPDIR": str(folder)},
        )
    return Launcher(process, command, folder)
