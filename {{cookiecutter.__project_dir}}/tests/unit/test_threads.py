"""The CPU thread default: room for other work, never more threads than the CPUs allow."""

from __future__ import annotations

import pytest
import torch

from {{cookiecutter.package_name}} import cli, threads


@pytest.fixture(autouse=True)
def _restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.fixture
def machine(monkeypatch, tmp_path):
    """A machine of ``cpus`` CPUs for this process, a container quota of ``quota`` CPUs (None: no quota)
    and ``local`` torchrun processes; no OMP_NUM_THREADS."""

    def make(cpus: int, local: int | None = None, quota: float | None = None) -> None:
        monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: set(range(cpus)), raising=False)
        limit = tmp_path / "cpu.max"
        limit.write_text("max 100000\n" if quota is None else f"{int(quota * 100000)} 100000\n")
        monkeypatch.setattr(threads, "CPU_QUOTA", limit)
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
        if local is None:
            monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
        else:
            monkeypatch.setenv("LOCAL_WORLD_SIZE", str(local))

    return make


@pytest.mark.parametrize(
    ("cpus", "local", "quota", "expected"),
    [(2, None, None, 1), (16, None, None, 8), (16, 4, None, 2), (16, 8, None, 1), (64, None, 4, 2), (1, 2, None, 1)],
    ids=["2-cpus", "16-cpus", "16-cpus-4-processes", "16-cpus-8-processes", "64-cpus-quota-4", "1-cpu-2-processes"],
)
def test_the_default_leaves_half_the_usable_cpus_shared_among_local_processes(machine, cpus, local, quota, expected):
    machine(cpus, local, quota)
    assert threads.default_threads() == expected, (
        f"{cpus} CPUs, quota {quota}, {local or 1} local process(es): {threads.default_threads()} threads, "
        f"expected {expected}"
    )


def test_omp_num_threads_overrides_the_default_and_an_argument_overrides_both(machine, monkeypatch):
    machine(16)
    for given, expected in [(None, 8), ("3", 3)]:
        if given is not None:
            monkeypatch.setenv("OMP_NUM_THREADS", given)
        assert threads.set_threads() == expected, f"OMP_NUM_THREADS={given}: {threads.set_threads()} threads"
        assert torch.get_num_threads() == expected, f"torch kept {torch.get_num_threads()} threads"
    assert threads.set_threads(2) == 2, "the number asked for was not used"
    assert torch.get_num_threads() == 2, f"torch kept {torch.get_num_threads()} threads"


def test_every_command_takes_threads_before_its_work(machine, tmp_path, capsys):
    machine(16)
    missing = str(tmp_path / "missing.pt")
    for command in (["evaluate"], ["predict", "--input", missing], ["serve"]):
        assert cli.main([*command, "--checkpoint", missing, "--threads", "3"]) == 2
        assert torch.get_num_threads() == 3, f"{command[0]} --threads 3 left {torch.get_num_threads()} threads"
        torch.set_num_threads(1)
    capsys.readouterr()
    assert cli.main(["train", "--threads", "0"]) == 2
    assert capsys.readouterr().err == "error: --threads must be at least 1, got 0\n"
