"""Short training runs shared by the integration tests (each is trained once per session)."""

from __future__ import annotations

import pytest

from {{ cookiecutter.package_name }}.config import TrainConfig
from {{ cookiecutter.package_name }}.training import TrainResult, fit

QUICK = {"epochs": 3, "seed": 0, "device": "cpu"}


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> TrainResult:
    """The default model trained for a few epochs on the embedded data, with its checkpoint on disk."""
    output_dir = tmp_path_factory.mktemp("trained")
    return fit(TrainConfig(**QUICK, output_dir=str(output_dir)), show_progress=False)
