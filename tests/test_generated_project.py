"""A baked project installs in a fresh environment, trains, predicts and refuses bad input.

Its own test suite runs through its nox sessions (test_project_tooling, test_matrix)."""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import ENV, TASKS, run

pytestmark = pytest.mark.slow

# Per task: the embedded dataset, its number of examples, its classes, the accuracy `train` must reach.
EMBEDDED = {
    "tabular": ("src/my_ml_project/data/penguins.csv", 344, {"Adelie", "Chinstrap", "Gentoo"}, 0.95),
    "image": ("src/my_ml_project/data/digits.csv.gz", 1797, {str(d) for d in range(10)}, 0.97),
    "text": ("src/my_ml_project/data/trec.csv.gz", 5943, {"ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"}, 0.84),
}


@pytest.mark.parametrize("task", TASKS)
def test_train_reaches_accuracy_then_predict_and_evaluate_work(
    task: str, task_project: Callable[[str], tuple[Path, Path]]
) -> None:
    project, python = task_project(task)
    data, rows, classes, threshold = EMBEDDED[task]
    bin_dir = python.parent
    trained = run(bin_dir / "my-ml-project", "train", "--output-dir", "runs/check", cwd=project)
    metrics = json.loads((project / "runs/check/metrics.json").read_text())
    assert metrics["test_accuracy"] >= threshold, f"held-out accuracy {metrics['test_accuracy']:.4f} < {threshold}"
    assert f"{metrics['test_accuracy']:.4f}" in trained.stdout, trained.stdout
    assert (project / "runs/check/checkpoint.pt").is_file()
    drawn = {"report.html", "loss.png", "accuracy.png", "confusion.png", "calibration.png"}
    missing = sorted(name for name in drawn if not (project / "runs/check" / name).is_file())
    assert not missing, f"the run has no {missing}; stderr: {trained.stderr[-2000:]}"
    assert "warning" not in trained.stderr, trained.stderr[-2000:]

    checkpoint = "runs/check/checkpoint.pt"
    output = "runs/check/predictions.csv"
    args = ["predict", "--checkpoint", checkpoint, "--input", data, "--output", output]
    run(python, "-m", "my_ml_project", *args, cwd=project)
    with (project / output).open() as handle:
        predictions = list(csv.DictReader(handle))
    assert len(predictions) == rows, f"{len(predictions)} predictions for {rows} examples"
    first = predictions[0]
    assert first["label"] in classes and 0 < float(first["confidence"]) <= 1, first

    evaluated = run(bin_dir / "my-ml-project", "evaluate", "--checkpoint", checkpoint, cwd=project)
    assert json.loads(evaluated.stdout)["accuracy"] == pytest.approx(metrics["test_accuracy"])


def test_benchmarks_run_and_check_what_they_time(default_project: Path, default_python: Path) -> None:
    """The benchmark session's functions, each run once as a test (timing off), in the project's environment."""
    uv = shutil.which("uv", path=ENV["PATH"])
    installer = [uv, "pip", "install", "--python", default_python] if uv else [default_python, "-m", "pip", "install"]
    run(*installer, "-q", "pytest-benchmark", cwd=default_project)
    result = run(
        default_python,
        "-m",
        "pytest",
        "benchmarks",
        "--benchmark-disable",
        "-p",
        "no:randomly",
        "-q",
        cwd=default_project,
        check=False,
    )
    assert result.returncode == 0 and "4 passed" in result.stdout, result.stdout[-3000:]


def test_console_script_and_module_are_the_same_cli(default_project: Path, default_python: Path) -> None:
    script = run(default_python.parent / "my-ml-project", "train", "--help", cwd=default_project)
    module = run(default_python, "-m", "my_ml_project", "train", "--help", cwd=default_project)
    assert script.stdout == module.stdout
    assert "--output-dir" in script.stdout and "--epochs" in script.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["predict", "--checkpoint", "missing.pt", "--input", EMBEDDED["tabular"][0]],
            "missing.pt: no such checkpoint file",
        ),
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
