"""Every Python a project may claim: its pinned environment resolves on it, and its unit tier passes on it.

The template's other tests run on the interpreter nox runs them with. A project claims every
Python from its `python_version` answer on (3.10 by default), and constraints.txt gives the
oldest the last releases that support it (environment markers): these tests build that
environment the project's own way and run the project's tests on the interpreter itself.
There, torch is the build the package index serves for that Python (the local CPU wheel is
for one interpreter only): the first run downloads it, later ones take it from uv's cache.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import BIN, CONSTRAINTS, DEFAULTS, ENV, TASKS, bake, git_init, run

pytestmark = pytest.mark.slow

VERSIONS = DEFAULTS["python_version"]
OWN = f"{sys.version_info.major}.{sys.version_info.minor}"  # the tests' own interpreter: every other test runs on it


def interpreter(version: str) -> Path:
    """An installed ``python{version}``: on PATH, or one of pyenv's versions (its shims answer
    only for the versions pyenv is told to use)."""
    candidates = [shutil.which(f"python{version}", path=ENV["PATH"])]
    pyenv = shutil.which("pyenv", path=ENV["PATH"])
    if pyenv:
        root = run(pyenv, "root", cwd=Path.cwd(), check=False).stdout.strip()
        candidates += sorted(map(str, Path(root).glob(f"versions/{version}.*/bin/python{version}")), reverse=True)
    for candidate in filter(None, candidates):
        answer = run(candidate, "-c", "import sys; print(*sys.version_info[:2], sep='.')", cwd=Path.cwd(), check=False)
        if answer.returncode == 0 and answer.stdout.strip() == version:
            return Path(candidate)
    pytest.fail(f"no Python {version} on this machine (on PATH or in pyenv): a project may claim it, so it is tested")


@pytest.mark.parametrize("version", VERSIONS)
def test_the_pinned_environment_of_every_task_resolves_on_every_python_a_project_may_claim(
    tmp_path: Path, version: str
) -> None:
    """The project's dependencies with every extra, within the template's constraints, for that Python."""
    projects = {task: bake(tmp_path / task, task=task, python_version=version) for task in TASKS}

    def resolve(task: str) -> subprocess.CompletedProcess:
        return run(
            BIN / "uv", "pip", "compile", "pyproject.toml", "--extra", "test", "--extra", "serve",
            "--python-version", version, "-c", CONSTRAINTS, "--no-header", "--no-annotate", "-q",
            cwd=projects[task], check=False,
        )  # fmt: skip

    with ThreadPoolExecutor(len(TASKS)) as pool:  # waiting on the package index, not on the CPU (baking chdirs)
        resolutions = zip(TASKS, pool.map(resolve, TASKS), strict=True)
    for task, resolved in resolutions:
        assert resolved.returncode == 0, (
            f"the {task} project's pinned environment does not resolve on Python {version}: add a release that "
            f"supports it to constraints.txt (an environment marker)\n{resolved.stderr[-3000:]}"
        )
        torch = re.findall(r"^torch==(\S+)", resolved.stdout, re.MULTILINE)
        assert [v.split("+")[0] for v in torch] == ["2.13.0"], f"{task} on Python {version} resolved torch {torch}"


# The oldest Python each task: the releases differ most there (pandas 2, numpy 2.2, matplotlib
# 3.10); the default task on each other one the tests do not already run on.
UNIT_RUNS = [(VERSIONS[0], task) for task in TASKS] + [(v, TASKS[0]) for v in VERSIONS[1:] if v != OWN]


@pytest.mark.parametrize(("version", "task"), UNIT_RUNS)
def test_the_unit_tier_passes_on_the_python_a_project_claims(tmp_path: Path, version: str, task: str) -> None:
    """Under another name than the default, so that the renamed package passes its tests too
    (test_matrix collects every other combination's tests)."""
    project = bake(tmp_path, project_name=f"Claims {version} {task}", task=task, python_version=version)
    git_init(project)
    python = interpreter(version)
    result = run(BIN / "nox", "-s", "unit", "--force-python", python, cwd=project, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0 and "was successful" in output, (
        f"the {task} project's unit tier on Python {version} ({python}):\n{output[-4000:]}"
    )
    (environment,) = (project / ".nox").glob("unit*")
    used = run(environment / "bin" / "python", "-c", "import sys; print(sys.version)", cwd=project).stdout
    assert used.startswith(f"{version}."), f"the session ran on Python {used.strip()}, not {version}"
