"""Baking: the right files, nothing left unrendered, answers reflected where they belong."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import tomllib
from conftest import bake, expected_files, files_of, unrendered_tags
from cookiecutter.exceptions import FailedHookException

SHARED_TABLE_SHA256 = "f204db2c753b0937caac3cb35258562c14f073e4bbc76be24b4c51ce22767a93"

KEY_FILES = [
    "pyproject.toml",
    "noxfile.py",
    "README.md",
    ".pre-commit-config.yaml",
    ".github/workflows/ci.yml",
    ".github/workflows/gpu.yml",
    "src/my_ml_project/__main__.py",
    "src/my_ml_project/cli.py",
    "src/my_ml_project/config.py",
    "src/my_ml_project/data/schema.py",
    "src/my_ml_project/data/split.py",
    "src/my_ml_project/data/preprocess.py",
    "src/my_ml_project/data/penguins.csv",
    "src/my_ml_project/models/registry.py",
    "src/my_ml_project/training/loop.py",
    "src/my_ml_project/training/checkpoint.py",
    "src/my_ml_project/inference/predictor.py",
    "tests/conftest.py",
]


def test_default_bake_has_exactly_the_template_files(tmp_path: Path) -> None:
    project = bake(tmp_path)
    assert project.name == "my-ml-project"
    produced = files_of(project)
    expected = expected_files("my_ml_project")
    assert produced == expected, f"missing: {sorted(expected - produced)}; unexpected: {sorted(produced - expected)}"
    missing_key_files = [name for name in KEY_FILES if name not in produced]
    assert not missing_key_files, f"key files not generated: {missing_key_files}"
    for tier in ("unit", "integration", "regression"):
        assert any(name.startswith(f"tests/{tier}/test_") for name in produced), f"no tests in tests/{tier}"


def test_no_template_tag_survives_in_any_generated_file(tmp_path: Path) -> None:
    leftovers = unrendered_tags(bake(tmp_path, project_name="Tag Check"))
    assert not leftovers, "unrendered template tags:\n" + "\n".join(leftovers)


def test_generated_python_compiles(tmp_path: Path) -> None:
    project = bake(tmp_path)
    for path in project.rglob("*.py"):
        compile(path.read_text(), str(path), "exec")


def test_embedded_dataset_is_the_attributed_penguins_table(tmp_path: Path) -> None:
    data = bake(tmp_path) / "src" / "my_ml_project" / "data"
    assert hashlib.sha256((data / "penguins.csv").read_bytes()).hexdigest() == SHARED_TABLE_SHA256
    attribution = (data / "README.md").read_text()
    assert "CC0" in attribution and "Gorman" in attribution


@pytest.mark.parametrize("python_version", ["3.10", "3.12"])
def test_answers_reach_metadata_tooling_and_ci(tmp_path: Path, python_version: str) -> None:
    project = bake(tmp_path, project_name="Penguin Lab", python_version=python_version, author_email="")
    assert project.name == "penguin-lab"
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    assert pyproject["project"]["name"] == "penguin-lab"
    assert pyproject["project"]["requires-python"] == f">={python_version}"
    assert pyproject["project"]["authors"] == [{"name": "Your Name"}]
    assert pyproject["project"]["scripts"] == {"penguin-lab": "penguin_lab.cli:main"}
    assert pyproject["tool"]["ruff"]["target-version"] == "py" + python_version.replace(".", "")
    assert (project / "src" / "penguin_lab" / "__init__.py").is_file()
    ci = (project / ".github" / "workflows" / "ci.yml").read_text()
    assert f'python-version: ["{python_version}", "3.13"]' in ci


@pytest.mark.parametrize(
    ("answers", "message"),
    [
        ({"package_name": "class"}, "package_name 'class' is a Python keyword"),
        ({"package_name": "json"}, "package_name 'json' would shadow"),
        ({"package_name": "torch"}, "package_name 'torch' would shadow"),
        ({"package_name": "my-package"}, "package_name 'my-package' is not a valid Python identifier"),
        ({"project_slug": "My Project!"}, "project_slug 'My Project!' must be lower-case"),
        ({"author_email": "nobody"}, "author_email 'nobody' does not look like an email address"),
    ],
    ids=["keyword", "stdlib", "dependency", "dash-in-package", "slug", "email"],
)
def test_bad_answer_is_refused_with_a_message_and_nothing_left_behind(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], answers: dict[str, str], message: str
) -> None:
    with pytest.raises(FailedHookException):
        bake(tmp_path / "out", **answers)
    err = capfd.readouterr().err
    assert message in err, err
    assert list((tmp_path / "out").iterdir()) == [], "a half-generated folder was left behind"
