"""The generated project's nox sessions, lint, pre-commit config and CI workflows."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import BIN, install, run

pytestmark = pytest.mark.slow

SESSIONS = [
    "lint",
    "audit",
    "unit",
    "integration",
    "distributed",
    "regression",
    "tests",
    "gpu",
    "flaky",
    "mutation",
    "benchmark",
    "scale",
]


def test_nox_lists_every_session_with_a_description(default_project: Path) -> None:
    listing = run(BIN / "nox", "-l", cwd=default_project).stdout
    for name in SESSIONS:
        assert re.search(rf"^[*-] {name} -> \S", listing, re.MULTILINE), f"session {name} not listed:\n{listing}"
    defaults = {m for m in re.findall(r"^\* (\w+)", listing, re.MULTILINE)}
    assert defaults == {"lint", "unit"}, listing


def test_every_cpu_tier_session_passes(default_project: Path) -> None:
    """Each tier in its own fresh environment; `tests` (every CPU tier, the distributed one
    included, with coverage) runs on the non-default project in test_matrix."""
    tiers = ["lint", "unit", "integration", "regression"]
    # As on CI images that forbid bytecode: the sessions must still cache it, in their own folder.
    result = run(BIN / "nox", "-s", *tiers, cwd=default_project, env={"PYTHONDONTWRITEBYTECODE": "1"})
    output = result.stdout + result.stderr
    for name in tiers:
        assert f"Session {name} was successful" in output, f"session {name}:\n{output[-3000:]}"
    # Only the integration tier runs on pytest-xdist workers (see PARALLEL in the noxfile).
    workers = re.findall(r"^(\d+) workers? \[(\d+) items?\]", output, re.MULTILINE)
    assert len(workers) == 1, f"expected the integration session alone on pytest-xdist workers, found {workers}"
    cache = default_project / ".nox" / "unit" / "pycache"
    assert any(cache.rglob("torch/__init__.*.pyc")), (
        f"the unit session cached no bytecode for torch under {cache}: every run compiles torch again"
    )


@pytest.mark.parametrize("task", ["image", "text"])
def test_the_type_checker_passes_on_every_task(task: str, task_project) -> None:
    """mypy as the lint session's hook runs it (the tabular project's runs in the lint session above),
    the data package held to the seam by seam.py."""
    project, python = task_project(task)
    install(python, "mypy", cwd=project)
    result = run(python, "-m", "mypy", cwd=project, check=False)
    assert result.returncode == 0, f"mypy on the {task} project:\n{result.stdout[-4000:]}"
    assert "Success: no issues found" in result.stdout, result.stdout[-2000:]


def test_the_audit_session_checks_the_workflows_and_never_passes_with_nothing_checked(default_project: Path) -> None:
    """zizmor finds nothing in the workflows (actions pinned to commits, no persisted credentials);
    pip-audit either checks every requirement or the session fails saying why. Here PyPI's feed
    answers no package, and pip-audit alone would print "No known vulnerabilities found"."""
    result = run(BIN / "nox", "-s", "audit", cwd=default_project, check=False)
    output = result.stdout + result.stderr
    assert "zizmor --offline" in output, output[-3000:]
    assert "No findings to report" in output, f"zizmor's findings on the workflows:\n{output[-4000:]}"
    if result.returncode == 0:  # the feed answered for every requirement
        assert "could not be audited" not in output, (
            f"the audit passed although pip-audit checked not every requirement:\n{output[-3000:]}"
        )
        assert "No known vulnerabilities found" in output, output[-3000:]
    else:
        assert "needs the network" in output, output[-3000:]
        assert "nothing was checked" in output, output[-3000:]


def test_gpu_session_fails_loudly_without_cuda(default_project: Path) -> None:
    result = run(BIN / "nox", "-s", "gpu", cwd=default_project, check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-2000:]
    assert "no CUDA device is visible" in output, output[-2000:]
    assert "passed" not in output


def test_generated_code_is_lint_clean_and_formatted(default_project: Path) -> None:
    run(BIN / "ruff", "check", "--no-cache", ".", cwd=default_project)
    run(BIN / "ruff", "format", "--no-cache", "--check", ".", cwd=default_project)


def test_pre_commit_config_is_valid(default_project: Path) -> None:
    run(BIN / "pre-commit", "validate-config", ".pre-commit-config.yaml", cwd=default_project)


def test_workflows_match_the_github_schema(default_project: Path) -> None:
    workflows = sorted((default_project / ".github" / "workflows").glob("*.yml"))
    assert [w.name for w in workflows] == ["ci.yml", "gpu.yml"]
    run(BIN / "check-jsonschema", "--builtin-schema", "vendor.github-workflows", *workflows, cwd=default_project)
    for workflow in workflows:
        text = workflow.read_text()
        assert "permissions:\n  contents: read" in text, f"{workflow.name}: no least-privilege permissions"
        jobs = text.count("runs-on:")
        assert text.count("timeout-minutes:") == jobs, f"{workflow.name}: a job without timeout-minutes"
