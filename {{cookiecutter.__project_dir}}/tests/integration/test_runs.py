"""``train`` writes every run to a folder of its own, holding what reproduces it; ``latest`` names the newest."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from {{ cookiecutter.package_name }}.checkpoint import load_checkpoint
from {{ cookiecutter.package_name }}.cli import main
from {{ cookiecutter.package_name }}.config import TrainConfig
from {{ cookiecutter.package_name }}.data import embedded_dataset_path
from {{ cookiecutter.package_name }}.files import fingerprint

pytestmark = pytest.mark.slow

RUN_FILES = {"checkpoint.pt", "config.json", "environment.json", "metrics.json", "MODEL_CARD.md"}


@pytest.fixture
def train(tmp_path: Path, quick_data: str | None, monkeypatch: pytest.MonkeyPatch):
    """``train(*options)``: the CLI's train for one epoch on the quick data, in ``tmp_path``, without the
    report (test_report.py checks it); its exit status."""
    monkeypatch.chdir(tmp_path)
    data = ["--data", quick_data] if quick_data else []

    def run(*options: str) -> int:
        return main(["train", "--epochs", "1", "--device", "cpu", "--no-progress", "--no-report", *data, *options])

    return run


def run_folders(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.name != "latest")


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(folder / "checkpoint.pt").model_state


def test_each_run_gets_a_folder_of_its_own_and_latest_names_the_newest(train, tmp_path: Path) -> None:
    assert train() == 0
    (first,) = run_folders(tmp_path / "runs")
    first_bytes = (first / "checkpoint.pt").read_bytes()
    assert train("--seed", "1") == 0
    folders = run_folders(tmp_path / "runs")
    assert len(folders) == 2, f"two runs, folders {[f.name for f in folders]}: a run was written over another"
    second = next(f for f in folders if f != first)
    assert (first / "checkpoint.pt").read_bytes() == first_bytes, "the second run changed the first run's checkpoint"
    for folder in folders:
        assert {p.name for p in folder.iterdir()} == RUN_FILES, f"{folder.name} holds {sorted(os.listdir(folder))}"
    latest = tmp_path / "runs" / "latest"
    assert latest.resolve() == second.resolve(), f"latest names {latest.resolve().name}, the newest is {second.name}"


def test_a_diverged_run_stops_with_one_line_and_never_becomes_latest(
    train, tmp_path: Path, assert_one_line_error
) -> None:
    assert train() == 0
    good = (tmp_path / "runs" / "latest").resolve()
    # AdamW moves each weight by about the learning rate per step: 1e30 overflows on the next step.
    assert train("--learning-rate", "1e30") == 2, "a diverged run exits 0"
    assert_one_line_error("training diverged in epoch 1, step ", "--learning-rate")
    assert (tmp_path / "runs" / "latest").resolve() == good, "a diverged run moved latest"
    diverged = next(f for f in run_folders(tmp_path / "runs") if f != good)
    assert not (diverged / "metrics.json").exists(), "a diverged run wrote metrics"


def test_a_run_folder_holds_the_settings_environment_and_data_that_reproduce_it(
    train, tmp_path: Path, quick_data: str | None
) -> None:
    assert train("--seed", "3", "--name", "first") == 0
    folder = tmp_path / "runs" / "first"
    config = json.loads((folder / "config.json").read_text())
    assert config == load_checkpoint(folder / "checkpoint.pt").config, "config.json is not the run's config"
    assert config["seed"] == 3, config
    assert config["output_dir"] == str(Path("runs") / "first"), config
    environment = json.loads((folder / "environment.json").read_text())
    # The build as imported ("2.13.0+cpu", "2.13.0+cu130"): the package index's CUDA build and the
    # CPU one share a distribution version and compute differently.
    assert environment["torch"] == torch.__version__, environment
    release = environment["packages"]["torch"].split("+")[0]
    assert release == torch.__version__.split("+")[0], environment["packages"]
    data = Path(quick_data) if quick_data else embedded_dataset_path()
    assert environment["data"]["sha256"] == fingerprint(data), "environment.json names other data"
    assert environment["git"] is None, "outside a git repository there is no commit to record"

    assert train("--config", str(folder / "config.json"), "--name", "again") == 0
    again = tmp_path / "runs" / "again"
    assert json.loads((again / "config.json").read_text())["seed"] == 3, "--config did not bring the stored seed"
    first_weights, again_weights = weights(folder), weights(again)
    for name, tensor in first_weights.items():
        assert torch.equal(tensor, again_weights[name]), f"{name}: `train --config` did not reproduce the run"


def test_a_folder_that_holds_a_run_is_refused_and_left_as_it_was(train, tmp_path: Path, assert_one_line_error) -> None:
    assert train("--name", "kept") == 0
    folder = tmp_path / "runs" / "kept"
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert train("--name", "kept", "--seed", "1") == 2
    assert_one_line_error("runs/kept", "--name")
    assert train("--output-dir", str(folder), "--seed", "1") == 2
    assert_one_line_error(str(folder), "already holds a run")
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before, "a refused run changed the folder"
    assert run_folders(tmp_path / "runs") == [folder], "a refused run left a folder behind"


def test_a_stored_config_that_is_not_one_is_refused(train, tmp_path: Path, assert_one_line_error) -> None:
    (tmp_path / "bad.json").write_text(json.dumps({**TrainConfig().to_dict(), "learning_rte": 0.1}))
    assert train("--config", str(tmp_path / "bad.json")) == 2
    assert_one_line_error("bad.json", "learning_rte")
    assert not (tmp_path / "runs").exists(), "a refused run left a folder behind"
