"""The GPU tier: ``pytest -m gpu`` (or ``nox -s gpu``). Where there is no GPU it fails, never skips."""

from __future__ import annotations

import os

import pytest
import torch

# cuBLAS reads this when it starts, before any test could set it; deterministic GEMMs need it.
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


@pytest.fixture(scope="session")
def cuda() -> torch.device:
    """The CUDA device. Without one, every GPU test fails with this message instead of passing vacuously."""
    if not torch.cuda.is_available():
        pytest.fail(
            f"the GPU tests need a CUDA device and torch.cuda.is_available() is False here (torch {torch.__version__}, "
            f"built for CUDA {torch.version.cuda}). Run them on a machine with an NVIDIA GPU: nox -s gpu",
            pytrace=False,
        )
    return torch.device("cuda", torch.cuda.current_device())
