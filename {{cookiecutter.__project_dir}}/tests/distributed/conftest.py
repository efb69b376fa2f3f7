"""The single-process run that every torchrun run of this tier is compared with."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from {{ cookiecutter.package_name }}.checkpoint import load_checkpoint
from {{ cookiecutter.package_name }}.config import TrainConfig
from {{ cookiecutter.package_name }}.training import fit

# Dropout off: each process would draw its own masks. Each global batch of 32 rows is split between
# the processes; a training split of an odd size gives one process a row more in some batches.
# In float64: two halves of a batch sum their gradient in another order than the whole batch, and
# in float32 that rounding can tip a max-pooling or ReLU choice and grow to 1e-2 within an epoch
# (on CPUs whose kernels block the batch differently); in float64 the runs agree to about 1e-12.
SETTINGS = {"epochs": 3, "dropout": 0.0, "batch_size": 32, "seed": 0, "device": "cpu", "precision": "float64"}


@pytest.fixture(scope="session")
def train_options(quick_data: str | None) -> list[str]:
    """SETTINGS (and the data) as options of ``train``, for the runs under torchrun."""
    options = [f"--{name.replace('_', '-')}={value}" for name, value in SETTINGS.items()]
    return options + ([f"--data={quick_data}"] if quick_data else [])


@pytest.fixture(scope="session")
def single(tmp_path_factory: pytest.TempPathFactory, quick_data: str | None) -> Path:
    """The output folder of SETTINGS trained in this process, on one thread.

    torchrun gives each process one thread; CPU kernels on more threads sum in another order,
    and over a few epochs that alone moves the weights by more than the tolerance.
    """
    output = tmp_path_factory.mktemp("single")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        fit(TrainConfig(output_dir=str(output), data=quick_data, report=False, **SETTINGS), show_progress=False)
    finally:
        torch.set_num_threads(threads)
    return output


def tolerance_of(run: Path) -> float:
    """How far another run of ``run``'s training that adds the same numbers in another order may land.

    One process sums a batch's gradients in another order than two halves all-reduced; in float64
    each step's update then differs in its last digits (about 1e-16 of it), and Adam moves no weight
    by much more than the learning rate a step. Half of float64's digits (sqrt(eps), 1.5e-8) of the
    most that all the steps can move a weight leaves that rounding room to grow a millionfold,
    while a rank that trains alone or on other rows is off by about the learning rate.
    """
    config = json.loads((run / "config.json").read_text())
    metrics = json.loads((run / "metrics.json").read_text())
    steps = config["epochs"] * math.ceil(metrics["rows"]["train"] / config["batch_size"])
    return steps * config["learning_rate"] * math.sqrt(torch.finfo(torch.float64).eps)


@pytest.fixture(scope="session")
def weight_tolerance(single: Path) -> float:
    """How far a distributed run's weights (and predictions) may be from the single run's."""
    return tolerance_of(single)


@pytest.fixture(scope="session")
def assert_learned_what_one_process_learns(single: Path, weight_tolerance: float) -> Callable[[Path, str], None]:
    """``check(output_dir, how)``: the checkpoint there holds the single run's weights within ``weight_tolerance``."""

    def check(output: Path, how: str) -> None:
        expected = load_checkpoint(single / "checkpoint.pt").model_state
        actual = load_checkpoint(output / "checkpoint.pt").model_state
        assert expected.keys() == actual.keys()
        gaps = {name: (actual[name].double() - weights.double()).abs() for name, weights in expected.items()}
        name = max(gaps, key=lambda n: gaps[n].max().item() if gaps[n].numel() else 0.0)
        gap = gaps[name]
        beyond = int((gap > weight_tolerance).sum())
        assert beyond == 0, (
            f"{name} differs after {how}: by up to {gap.max().item():.3g} on {beyond} of {gap.numel()} values "
            f"(up to {weight_tolerance:.3g} allowed: sqrt(float64 eps) of the learning rate times the steps); "
            "a rank that trains alone, on other rows, or without averaging the gradients lands this far"
        )

    return check
