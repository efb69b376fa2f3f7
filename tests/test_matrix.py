"""Every value of every option (the task included), paired with every value of every other
option, bakes a project with exactly the right files, no template tags, lint-clean code and a
test suite whose every tier collects (combinations differ in names, licence, CI files and
metadata, which collecting reads). Renamed projects pass their unit tier in test_pythons; one
non-default combination runs its whole suite through nox."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
import tomllib
from conftest import BIN, CHOICES, bake, expected_files, files_of, pairwise, run, run_project_tests, unrendered_tags

COMBINATIONS = pairwise(CHOICES)
IDS = ["-".join(re.sub(r"[^\w.]+", "", value) for value in combo.values()) for combo in COMBINATIONS]
LICENSE_TEXT = {"MIT": "MIT License", "BSD-3-Clause": "BSD 3-Clause License", "Apache-2.0": "Apache License"}
CI_SCHEMAS = {"github": "vendor.github-workflows", "gitlab": "vendor.gitlab-ci"}


def test_pairwise_set_covers_every_pair() -> None:
    names = list(CHOICES)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            for x in CHOICES[a]:
                for y in CHOICES[b]:
                    assert any(c[a] == x and c[b] == y for c in COMBINATIONS), f"{a}={x} never meets {b}={y}"


@pytest.mark.slow
@pytest.mark.parametrize("answers", COMBINATIONS, ids=IDS)
def test_combination_bakes_lints_and_its_tests_import(
    tmp_path: Path, answers: dict[str, str], task_project: Callable[[str], tuple[Path, Path]]
) -> None:
    index = COMBINATIONS.index(answers)
    project = bake(tmp_path, project_name=f"Matrix {index}", **answers)
    package = f"matrix_{index}"

    produced = files_of(project)
    expected = expected_files(package, **answers)
    assert produced == expected, f"missing: {sorted(expected - produced)}; unexpected: {sorted(produced - expected)}"
    leftovers = unrendered_tags(project)
    assert not leftovers, "unrendered template tags:\n" + "\n".join(leftovers)

    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    assert pyproject["project"]["requires-python"] == f">={answers['python_version']}"
    if answers["license"] == "Proprietary":
        assert "license" not in pyproject["project"]
        assert "License :: Other/Proprietary License" in pyproject["project"]["classifiers"]
    else:
        assert pyproject["project"]["license"] == answers["license"]
        assert LICENSE_TEXT[answers["license"]] in (project / "LICENSE").read_text()
    noxfile = (project / "noxfile.py").read_text()
    assert f'nox.options.default_venv_backend = "{answers["venv_backend"]}"' in noxfile

    run(BIN / "ruff", "check", "--no-cache", ".", cwd=project)
    run(BIN / "ruff", "format", "--no-cache", "--check", ".", cwd=project)
    ci_files = sorted({*project.glob(".github/workflows/*.yml"), *project.glob(".gitlab-ci.yml")})
    if answers["ci"] in CI_SCHEMAS:
        run(BIN / "check-jsonschema", "--builtin-schema", CI_SCHEMAS[answers["ci"]], *ci_files, cwd=project)
    else:
        assert ci_files == []
    if answers["ci"] == "github":  # actions pinned to commits, no persisted credentials, no risky triggers
        run(BIN / "zizmor", "--offline", *ci_files, cwd=project)

    python = task_project(answers["task"])[1]  # an environment with this task's dependencies
    # every test module of every tier imports the renamed package and collects
    summary = run_project_tests(python, project, "tests", "--collect-only").stdout.strip().splitlines()[-1]
    assert " collected" in summary and "error" not in summary, summary
    assert (
        f"src/{package}/"
        in run(
            python,
            "-c",
            f"import {package}; print({package}.__file__)",
            cwd=project,
            env={"PYTHONPATH": str(project / "src")},
        ).stdout
    )


@pytest.mark.slow
def test_non_default_project_passes_its_whole_suite_with_coverage(tmp_path: Path) -> None:
    """Another task, name, license, CI and minimum Python: every CPU tier through `nox -s tests`."""
    answers = {"task": "image", "license": "Proprietary", "ci": "gitlab", "python_version": "3.11"}
    project = bake(tmp_path, project_name="Digit Lab", **answers)
    result = run(BIN / "nox", "-s", "tests", cwd=project)
    output = result.stdout + result.stderr
    assert "Session tests was successful" in output, output[-3000:]
    total = re.search(r"^TOTAL\s.*\s(\d+(?:\.\d+)?)%$", output, re.MULTILINE)
    assert total, f"no coverage total in the output:\n{output[-3000:]}"
    assert float(total.group(1)) >= 85, total.group(0)
