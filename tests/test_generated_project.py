"""A baked project installs in a fresh environment, trains, predicts and refuses bad input.

Its own test suite runs through its nox sessions (test_project_tooling, test_matrix)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run

pytestmark = pytest.mark.slow

DATA = "src/my_ml_project/data/penguins.csv"


def test_train_reaches_accuracy_then_predict_and_evaluate_work(default_project: Path, default_python: Path) -> None:
    bin_dir = default_python.parent
    trained = run(bin_dir / "my-ml-project", "train", "--output-dir", "runs/check", cwd=default_project)
    metrics = json.loads((default_project / "runs/check/metrics.json").read_text())
    assert metrics["test_accuracy"] >= 0.95, f"held-out accuracy {metrics['test_accuracy']:.4f} < 0.95"
    assert f"{metrics['test_accuracy']:.4f}" in trained.stdout, trained.stdout
    assert (default_project / "runs/check/checkpoint.pt").is_file()

    checkpoint = "runs/check/checkpoint.pt"
    run(
        default_python,
        "-m",
        "my_ml_project",
        "predict",
        "--checkpoint",
        checkpoint,
        "--input",
        DATA,
        "--output",
        "runs/check/predictions.csv",
        cwd=default_project,
    )
    lines = (default_project / "runs/check/predictions.csv").read_text().splitlines()
    assert lines[0].startswith("label,confidence,"), lines[0]
    assert len(lines) == 1 + 344, f"{len(lines) - 1} predictions for 344 rows"
    label, confidence = lines[1].split(",")[:2]
    assert label in {"Adelie", "Chinstrap", "Gentoo"} and 0 < float(confidence) <= 1, lines[1]

    evaluated = run(bin_dir / "my-ml-project", "evaluate", "--checkpoint", checkpoint, cwd=default_project)
    assert json.loads(evaluated.stdout)["accuracy"] == pytest.approx(metrics["test_accuracy"])


def test_console_script_and_module_are_the_same_cli(default_project: Path, default_python: Path) -> None:
    script = run(default_python.parent / "my-ml-project", "train", "--help", cwd=default_project)
    module = run(default_python, "-m", "my_ml_project", "train", "--help", cwd=default_project)
    assert script.stdout == module.stdout
    assert "--output-dir" in script.stdout and "--epochs" in script.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["predict", "--checkpoint", "missing.pt", "--input", DATA], "missing.pt: no such checkpoint file"),
        (["train", "--epochs", "0"], "epochs must be at least 1"),
        (["train", "--data", "nowhere.csv"], "nowhere.csv: no such file"),
    ],
    ids=["missing-checkpoint", "zero-epochs", "missing-data"],
)
def test_bad_command_line_input_gives_one_line_and_exit_2(
    default_project: Path, default_python: Path, args: list[str], message: str
) -> None:
    result = run(default_python, "-m", "my_ml_project", *args, cwd=default_project, check=False)
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
