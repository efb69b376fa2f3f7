"""Baking: the right files, nothing left unrendered, answers reflected where they belong."""

from __future__ import annotations

import ast
import gzip
import hashlib
import re
import tempfile
from pathlib import Path

import pytest
import tomllib
from conftest import CONSTRAINTS, TASKS, TEMPLATE, bake, expected_files, files_of, unrendered_tags
from cookiecutter.exceptions import FailedHookException

# Per task: the embedded dataset (sha256 as in the shared data's README, of the uncompressed
# file where the shared one is not compressed) and words its attribution must hold.
EMBEDDED = {
    "tabular": ("penguins.csv", "f204db2c753b0937caac3cb35258562c14f073e4bbc76be24b4c51ce22767a93", ("CC0", "Gorman")),
    "image": (
        "digits.csv.gz",
        "09f66e6debdee2cd2b5ae59e0d6abbb73fc2b0e0185d2e1957e9ebb51e23aa22",
        ("CC BY 4.0", "Alpaydin"),
    ),
    "text": ("trec.csv.gz", "5d6cb77ac3b1d4fc55cbbe738f98ff3ea79ca9d384e6a83ab73f166888c5b189", ("Li", "Roth", "TREC")),
}
SHARED_UNCOMPRESSED = {"text"}
# Distribution name -> import name, for the dependency check.
IMPORT_NAMES = {"pillow": "PIL", "pytest-xdist": "xdist"}

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
    "src/my_ml_project/task.py",
    "src/my_ml_project/training/split.py",
    "src/my_ml_project/data/preprocess.py",
    "src/my_ml_project/data/penguins.csv",
    "src/my_ml_project/models/registry.py",
    "src/my_ml_project/training/loop.py",
    "src/my_ml_project/checkpoint.py",
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


@pytest.mark.parametrize("task", TASKS)
def test_each_task_bakes_exactly_its_own_files(tmp_path: Path, task: str) -> None:
    project = bake(tmp_path, task=task)
    produced = files_of(project)
    expected = expected_files("my_ml_project", task=task)
    assert produced == expected, f"missing: {sorted(expected - produced)}; unexpected: {sorted(produced - expected)}"
    others = [other for other in TASKS if other != task]
    for other in others:
        foreign = EMBEDDED[other][0]
        assert not any(name.endswith(foreign) for name in produced), f"a {task} project holds {other}'s {foreign}"
    leftovers = unrendered_tags(project)
    assert not leftovers, "unrendered template tags:\n" + "\n".join(leftovers)


@pytest.mark.parametrize("task", TASKS)
def test_embedded_dataset_is_the_attributed_shared_file(tmp_path: Path, task: str) -> None:
    data = bake(tmp_path, task=task) / "src" / "my_ml_project" / "data"
    name, sha256, credits = EMBEDDED[task]
    content = (data / name).read_bytes()
    if task in SHARED_UNCOMPRESSED:
        content = gzip.decompress(content)
    assert hashlib.sha256(content).hexdigest() == sha256, f"{name} differs from the shared file"
    attribution = (data / "README.md").read_text()
    for words in credits:
        assert words in attribution, f"the attribution of {name} does not mention {words!r}"


def requirement_name(requirement: str) -> str:
    """The normalised distribution name of a requirement (``Pillow>=10`` gives ``pillow``)."""
    return re.sub(r"[-_.]+", "-", re.split(r"[\[<>=!~ ;]", requirement)[0]).lower()


def import_name(distribution: str) -> str:
    return IMPORT_NAMES.get(distribution, distribution.replace("-", "_"))


@pytest.mark.parametrize("task", TASKS)
def test_every_declared_dependency_is_imported_by_the_package(tmp_path: Path, task: str) -> None:
    project = bake(tmp_path, task=task)
    metadata = tomllib.loads((project / "pyproject.toml").read_text())["project"]
    declared = metadata["dependencies"] + metadata["optional-dependencies"]["serve"]
    source = "\n".join(path.read_text() for path in (project / "src").rglob("*.py"))
    for requirement in declared:
        module = import_name(requirement_name(requirement))
        imported = re.search(rf"^\s*(import|from) {re.escape(module)}\b", source, re.MULTILINE)
        assert imported, f"a {task} project declares {requirement} but its package never imports {module}"


@pytest.mark.parametrize("task", TASKS)
def test_every_requirement_is_pinned_and_no_package_may_shadow_it(tmp_path: Path, task: str) -> None:
    """Each requirement of a project (its dependencies and extras) has a pin in constraints.txt, so test
    environments are reproducible, and the pre-generation hook refuses a package name that shadows it."""
    metadata = tomllib.loads((bake(tmp_path, task=task) / "pyproject.toml").read_text())["project"]
    requirements = metadata["dependencies"] + [r for extra in metadata["optional-dependencies"].values() for r in extra]
    pinned = {requirement_name(line) for line in CONSTRAINTS.read_text().splitlines() if "==" in line}
    hook = ast.parse((TEMPLATE / "hooks" / "pre_gen_project.py").read_text())
    guarded = next(
        ast.literal_eval(node.value)
        for node in hook.body
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "DEPENDENCIES"
    )
    for requirement in requirements:
        name = requirement_name(requirement)
        assert name in pinned, f"a {task} project requires {requirement}, which constraints.txt does not pin"
        assert import_name(name).lower() in guarded, f"the hook lets a package shadow {import_name(name)}"


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


def test_a_bake_leaves_nothing_in_the_temporary_folder(tmp_path: Path) -> None:
    """Cookiecutter writes each hook, rendered, to a temporary file that it leaves: the hooks delete theirs."""
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TMPDIR", str(temporary))
        patch.setattr(tempfile, "tempdir", str(temporary))
        bake(tmp_path / "made")
        with pytest.raises(FailedHookException):
            bake(tmp_path / "refused", package_name="class")
    left = sorted(p.name for p in temporary.iterdir())
    assert left == [], f"a successful and a refused bake left {left} in the temporary folder"
