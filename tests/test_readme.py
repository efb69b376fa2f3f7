"""The README's first two commands are the ones that work: one is run here, one is CI's."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from conftest import TEMPLATE, run

README = (TEMPLATE / "README.md").read_text()
COMMANDS = re.findall(r"```sh\n(.*?)\n```", README, re.DOTALL)


def test_ci_runs_the_readme_test_command() -> None:
    ci = (TEMPLATE / ".ci" / "run").read_text().strip().splitlines()
    assert ci[-1] == COMMANDS[1], f".ci/run runs {ci[-1]!r}, the README says {COMMANDS[1]!r}"


@pytest.mark.slow
def test_readme_demo_generates_trains_and_predicts(tmp_path: Path) -> None:
    """Run the README's first command verbatim, from a copy of the template."""
    checkout = tmp_path / "template"
    shutil.copytree(TEMPLATE, checkout, ignore=shutil.ignore_patterns(".git", ".nox", ".venv", "__pycache__"))
    result = run("bash", "-c", COMMANDS[0], cwd=checkout, env={"TMPDIR": str(tmp_path)})
    accuracy = re.search(r"test accuracy (\d\.\d+)", result.stdout)
    assert accuracy and float(accuracy.group(1)) >= 0.95, result.stdout
    assert "\nrow,label,confidence," in result.stdout, result.stdout  # the head of predictions.csv
