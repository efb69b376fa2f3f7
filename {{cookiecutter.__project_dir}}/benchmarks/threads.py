"""CPU threads: the project's default against torch's, on an idle machine and beside a CPU load.

``nox -s threads`` (or ``python benchmarks/threads.py``) runs the default ``train`` of this
project, each run a process of its own, with torch's thread count (one per CPU this process may
use: ``--threads <CPUs>``) and with the project's default (no option), first alone and then
beside ``--load`` processes that keep a CPU busy each. Runs alternate between the two settings
(``--repeats`` of each), so a machine whose speed drifts slows both alike; the table gives the
median wall and CPU seconds, and the ratio of torch's default to the project's.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PACKAGE = "{{ cookiecutter.package_name }}"


def spin() -> None:
    while True:
        pass


def timed_train(threads: int | None, runs: Path) -> tuple[float, float]:
    """(wall, CPU) seconds of one default `train`, ``threads`` CPU threads (None: the project's default)."""
    args = [sys.executable, "-m", PACKAGE, "train", "--runs-dir", str(runs), "--no-report"]
    env = {key: value for key, value in os.environ.items() if key != "OMP_NUM_THREADS"}
    start = time.perf_counter()
    process = subprocess.Popen(
        [*args, *(["--threads", str(threads)] if threads else [])], env=env, stdout=subprocess.DEVNULL
    )
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"train exited with {os.waitstatus_to_exitcode(status)}")
    return time.perf_counter() - start, usage.ru_utime + usage.ru_stime


def measure(repeats: int, runs: Path) -> dict[str, list[tuple[float, float]]]:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    times: dict[str, list[tuple[float, float]]] = {"torch": [], "project": []}
    for _ in range(repeats):
        times["torch"].append(timed_train(cpus, runs))
        times["project"].append(timed_train(None, runs))
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs of each setting (default: %(default)s)")
    parser.add_argument("--load", type=int, default=2, help="busy processes beside the loaded runs (default: 2)")
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for label, load in [("idle", 0), (f"beside {args.load} busy processes", args.load)]:
            busy = [multiprocessing.Process(target=spin, daemon=True) for _ in range(load)]
            for process in busy:
                process.start()
            try:
                times = measure(args.repeats, Path(folder) / "runs")
            finally:
                for process in busy:
                    process.terminate()
            wall = {name: statistics.median(w for w, _ in runs) for name, runs in times.items()}
            cpu = {name: statistics.median(c for _, c in runs) for name, runs in times.items()}
            ratios = f"{wall['torch'] / wall['project']:.2f}x / {cpu['torch'] / cpu['project']:.2f}x"
            rows.append(
                f"| {label} | {wall['torch']:.1f} s / {cpu['torch']:.1f} s | {wall['project']:.1f} s / "
                f"{cpu['project']:.1f} s | {ratios} |"
            )
    print("| machine | torch's default: wall / CPU | project's default | torch's / project's |")
    print("|---|---|---|---|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
