"""Scaling out with torchrun (gloo, two CPU processes) does not change what is learned."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import distributed

import {{ cookiecutter.package_name }} as package
from {{ cookiecutter.package_name }}.config import TrainConfig
from {{ cookiecutter.package_name }}.data import load_examples
from {{ cookiecutter.package_name }}.inference import Predictor
from {{ cookiecutter.package_name }}.testing import run_torchrun
from {{ cookiecutter.package_name }}.training import fit, load_checkpoint

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not distributed.is_available(), reason="this torch build has no torch.distributed"),
]

# Dropout off: each process would draw its own masks. Each global batch of 32 rows is split between
# the 2 processes; a training split of an odd size gives one process a row more in some batches.
SETTINGS = {"epochs": 3, "dropout": 0.0, "batch_size": 32, "seed": 0, "device": "cpu"}
CRASH_SCRIPT = """
import os, sys
from PACKAGE.config import TrainConfig
from PACKAGE.training import loop

real_epoch = loop.train_one_epoch

def epoch_that_fails_on_rank_1(*args, **kwargs):
    if os.environ["RANK"] == "1":
        raise RuntimeError("injected failure in rank 1")
    return real_epoch(*args, **kwargs)

loop.train_one_epoch = epoch_that_fails_on_rank_1
loop.fit(TrainConfig(output_dir=sys.argv[1], device="cpu", epochs=200))
"""


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same training, once in one process and once with torchrun on two."""
    root = tmp_path_factory.mktemp("ddp")
    # torchrun gives each process one thread; CPU kernels on more threads sum in another order,
    # and over a few epochs that alone moves the weights by more than the tolerance below.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        fit(TrainConfig(output_dir=str(root / "single"), **SETTINGS), show_progress=False)
    finally:
        torch.set_num_threads(threads)
    options = [f"--{name.replace('_', '-')}={value}" for name, value in SETTINGS.items()]
    result = run_torchrun(
        "-m", package.__name__, "train", f"--output-dir={root / 'ddp'}", *options, processes=2, cwd=root, timeout=180
    )
    assert result.returncode == 0, f"torchrun failed:\n{result.stderr[-4000:]}"
    return {"single": root / "single", "ddp": root / "ddp"}


def test_two_processes_learn_the_same_weights_as_one(runs: dict[str, Path]) -> None:
    metrics = json.loads((runs["ddp"] / "metrics.json").read_text())
    assert metrics["processes"] == 2, metrics
    single = load_checkpoint(runs["single"] / "checkpoint.pt")["model_state"]
    ddp = load_checkpoint(runs["ddp"] / "checkpoint.pt")["model_state"]
    assert single.keys() == ddp.keys()
    for name, weights in single.items():
        torch.testing.assert_close(
            ddp[name], weights, rtol=0, atol=1e-5, msg=lambda m, n=name: f"{n} differs after DDP training: {m}"
        )


def test_metrics_are_reduced_over_both_processes(runs: dict[str, Path]) -> None:
    single = json.loads((runs["single"] / "metrics.json").read_text())
    ddp = json.loads((runs["ddp"] / "metrics.json").read_text())
    for key in ("train_loss", "val_loss", "val_accuracy", "test_accuracy"):
        assert ddp[key] == pytest.approx(single[key], abs=1e-4), f"{key}: {ddp[key]} under DDP, {single[key]} alone"


def test_checkpoint_written_under_ddp_serves_in_one_process(runs: dict[str, Path]) -> None:
    inputs = load_examples().inputs
    from_ddp = Predictor.from_checkpoint(runs["ddp"] / "checkpoint.pt").predict_proba(inputs)
    from_single = Predictor.from_checkpoint(runs["single"] / "checkpoint.pt").predict_proba(inputs)
    np.testing.assert_allclose(from_ddp, from_single, atol=1e-5, err_msg="DDP checkpoint predicts differently")


def test_a_crash_in_one_rank_fails_the_run_instead_of_hanging(tmp_path: Path) -> None:
    script = tmp_path / "crash.py"
    script.write_text(CRASH_SCRIPT.replace("PACKAGE", package.__name__))
    result = run_torchrun(str(script), str(tmp_path / "out"), processes=2, cwd=tmp_path, timeout=90)
    assert result.returncode != 0, "torchrun reported success although rank 1 raised"
    assert "injected failure in rank 1" in result.stderr, result.stderr[-3000:]
    assert not (tmp_path / "out" / "metrics.json").exists(), "a failed run wrote its metrics"
