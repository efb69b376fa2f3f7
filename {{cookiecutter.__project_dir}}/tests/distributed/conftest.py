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
# In float64: two halves of a batch sum their gradient in another order than the whole batch, and
# in float32 that rounding can tip a max-pooling or ReLU choice and grow to 1e-2 within an epoch
# (on CPUs whose kernels block the batch differently); in float64 the runs agree to about 1e-12.
SETTINGS = {"epochs": 3, "dropout": 0.0, "batch_size": 32, "seed": 0, "device": "cpu", "precision": "float64"}
{%- if cookiecutter.task == "text" %}
# One process sums a batch's gradients in another order than two do (an all-reduce of two halves).
# Adam turns that float noise into visible steps for parameters whose gradients are tiny (the
# embeddings of rare tokens), so texts agree to about 1e-3, not 1e-5; a rank that trains alone
# (no all-reduce) or on other rows moves the weights by far more.
WEIGHT_TOLERANCE = 5e-3
{%- else %}
WEIGHT_TOLERANCE = 1e-5
{%- endif %}


@pytest.fixture(scope="session")
def weight_tolerance() -> float:
    """How far a distributed run's weights (and predictions) may be from the single run's."""
    return WEIGHT_TOLERANCE


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


@pytest.fixture(scope="session")
def assert_learned_what_one_process_learns(single: Path) -> Callable[[Path, str], None]:
    """``check(output_dir, how)``: the checkpoint there holds the single run's weights within ``WEIGHT_TOLERANCE``."""

    def check(output: Path, how: str) -> None:
        expected = load_checkpoint(single / "checkpoint.pt")["model_state"]
        actual = load_checkpoint(output / "checkpoint.pt")["model_state"]
        assert expected.keys() == actual.keys()
        for name, weights in expected.items():
            torch.testing.assert_close(
                actual[name],
                weights,
                rtol=0,
                atol=WEIGHT_TOLERANCE,
                msg=lambda m, n=name: f"{n} differs after {how}: {m}",
            )

    return check
