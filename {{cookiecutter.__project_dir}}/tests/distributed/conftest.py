"""The single-process run that every torchrun run of this tier is compared with."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from {{ cookiecutter.package_name }}.config import TrainConfig
from {{ cookiecutter.package_name }}.training import fit, load_checkpoint

# Dropout off: each process would draw its own masks. Each global batch of 32 rows is split between
# the processes; a training split of an odd size gives one process a row more in some batches.
SETTINGS = {"epochs": 3, "dropout": 0.0, "batch_size": 32, "seed": 0, "device": "cpu"}


@pytest.fixture(scope="session")
def train_options() -> list[str]:
    """SETTINGS as options of ``train``, for the runs under torchrun."""
    return [f"--{name.replace('_', '-')}={value}" for name, value in SETTINGS.items()]


@pytest.fixture(scope="session")
def single(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The output folder of SETTINGS trained in this process, on one thread.

    torchrun gives each process one thread; CPU kernels on more threads sum in another order,
    and over a few epochs that alone moves the weights by more than the tolerance below.
    """
    output = tmp_path_factory.mktemp("single")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        fit(TrainConfig(output_dir=str(output), **SETTINGS), show_progress=False)
    finally:
        torch.set_num_threads(threads)
    return output


@pytest.fixture(scope="session")
def assert_learned_what_one_process_learns(single: Path) -> Callable[[Path, str], None]:
    """``check(output_dir, how)``: the checkpoint there holds the single run's weights within 1e-5."""

    def check(output: Path, how: str) -> None:
        expected = load_checkpoint(single / "checkpoint.pt")["model_state"]
        actual = load_checkpoint(output / "checkpoint.pt")["model_state"]
        assert expected.keys() == actual.keys()
        for name, weights in expected.items():
            torch.testing.assert_close(
                actual[name], weights, rtol=0, atol=1e-5, msg=lambda m, n=name: f"{n} differs after {how}: {m}"
            )

    return check
