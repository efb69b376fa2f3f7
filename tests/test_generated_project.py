"""A baked project's command line and benchmarks, in a fresh environment; bad input is refused.

Training, evaluating and predicting by the README's commands: test_generated_readme. Its own
test suite runs through its nox sessions (test_project_tooling for tables, test_matrix for
images), and here for texts."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import EMBEDDED, ENV, TASKS, run, run_project_tests

pytestmark = pytest.mark.slow


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
    assert result.returncode == 0 and "6 passed" in result.stdout, result.stdout[-3000:]


def test_the_text_project_passes_its_integration_and_regression_tiers(
    task_project: Callable[[str], tuple[Path, Path]],
) -> None:
    """Its committed golden baseline holds for what the template's code trains, and every contract
    holds on the embedded questions (its unit tier runs in test_matrix and test_pythons)."""
    project, python = task_project("text")
    result = run_project_tests(python, project, "tests/integration", "tests/regression", check=False)
    summary = result.stdout.strip().splitlines()[-1]
    assert result.returncode == 0 and " passed" in summary, result.stdout[-6000:]


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


def test_the_scale_benchmark_measures_memory_and_what_each_process_reads(
    task_project: Callable[[str], tuple[Path, Path]], tmp_path: Path
) -> None:
    """`nox -s scale` at small sizes on the image task (the one that also measures throughput):
    every figure it reports is measured (the sizes it is meant for take minutes)."""
    project, python = task_project("image")
    figures_file = tmp_path / "scale.json"
    run(python, "benchmarks/scale.py", "--sizes", "40", "400", "--json", figures_file, cwd=project, timeout=600)
    figures = json.loads(figures_file.read_text())
    for size in ("40", "400"):
        for key in ("train_mb", "predict_mb"):
            assert figures[size][key] > 100, f"{size} examples: {key} {figures[size][key]}, not a measured process"
    reads = figures["torchrun_reads"]
    assert reads[0]["fit"] > 0, f"rank 0 read nothing to fit the preprocessing: {reads}"
    assert reads[1]["fit"] == 0, f"rank 1 read examples to fit the preprocessing: {reads}"
    assert figures["throughput"]["project_items_per_s"] > 0, figures["throughput"]


@pytest.mark.parametrize("task", TASKS)
def test_the_scale_benchmark_makes_data_the_project_reads(
    task: str, task_project: Callable[[str], tuple[Path, Path]], tmp_path: Path
) -> None:
    """The benchmark's dataset of each task: made from the embedded one, in a format `train --data` reads."""
    project, python = task_project(task)
    script = (
        "import sys; sys.path.insert(0, 'benchmarks'); from pathlib import Path; import scale; "
        "from my_ml_project.data import load_examples; "
        "print(len(load_examples(scale.make_dataset(150, Path(sys.argv[1])))))"
    )
    assert run(python, "-c", script, tmp_path, cwd=project).stdout.strip() == "150"
