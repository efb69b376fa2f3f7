"""Baking helpers and the environments that generated projects are installed into.

Every environment created here installs with the template's constraints file, so torch
is the pinned CPU build. uv does not read pip's configuration: where pip is configured
with local find-links (a wheel folder), they are handed to uv explicitly.

Temporary files go to a folder inside pytest's own temporary folder, not the system's:
what a bake or a generated project's run leaves there is pytest's to clean up.
"""

from __future__ import annotations

import ast
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import venv
from collections.abc import Callable, Iterator
from pathlib import Path

import jinja2
import pytest
from cookiecutter.main import cookiecutter
from hypothesis import settings

TEMPLATE = Path(__file__).resolve().parents[1]
CONSTRAINTS = TEMPLATE / "constraints.txt"
DEFAULTS = json.loads((TEMPLATE / "cookiecutter.json").read_text())
BIN = Path(sys.executable).parent


def pip_find_links() -> str | None:
    """The wheel folders pip is configured with (``PIP_FIND_LINKS``, else ``pip config``), if any.

    The interpreter running these tests may have no pip (nox builds its environments with uv):
    then the system's ``python3`` reads pip's configuration, which is the machine's, not an
    environment's. Without these folders uv would resolve torch from the index (a CUDA build).
    """
    if os.environ.get("PIP_FIND_LINKS"):
        return os.environ["PIP_FIND_LINKS"]
    for python in dict.fromkeys([sys.executable, shutil.which("python3")]):
        if python is None:
            continue
        result = subprocess.run(
            [python, "-m", "pip", "config", "get", "global.find-links"],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode == 0 and result.stdout.strip():
            return result.stdout.strip()
    return None


def subprocess_env() -> dict[str, str]:
    """Environment for every command run on a generated project: constraints, tools on PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NOX_", "PYTEST_", "VIRTUAL_ENV"))}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PIP_CONSTRAINT"] = str(CONSTRAINTS)
    env["UV_CONSTRAINT"] = str(CONSTRAINTS)
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    # Cache bytecode even where the machine says not to: every command here imports torch, and
    # without its cached bytecode each import compiles torch's sources again (seconds each time).
    env["PYTHONDONTWRITEBYTECODE"] = ""  # Python only honours a non-empty value
    for role in ("AUTHOR", "COMMITTER"):  # commits in throwaway repositories, whatever git's config
        env[f"GIT_{role}_NAME"] = "Template Tests"
        env[f"GIT_{role}_EMAIL"] = "template-tests@example.com"
    # One thread per torch process: the tests run two at a time on two cores, and two processes of
    # two threads each wait on each other (a text `train` took 58 s so, 32 s on one thread each).
    env["OMP_NUM_THREADS"] = "1"
    find_links = pip_find_links()
    if find_links:
        env["UV_FIND_LINKS"] = find_links.replace(" ", ",")
    return env


ENV = subprocess_env()

# Property tests: a quick search on every run, a deep one where time is cheap (HYPOTHESIS_PROFILE=thorough).
settings.register_profile("quick", max_examples=30)
settings.register_profile("thorough", max_examples=300)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "quick"))


@pytest.fixture(scope="session", autouse=True)
def temporary_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """TMPDIR for this test process and every command it runs: a folder inside pytest's own."""
    folder = tmp_path_factory.mktemp("tmp")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TMPDIR", str(folder))
        patch.setattr(tempfile, "tempdir", str(folder))
        patch.setitem(ENV, "TMPDIR", str(folder))
        yield folder


def run(
    *args: str | Path, cwd: Path, check: bool = True, timeout: float = 900, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run a command; on an unexpected exit status fail with its output, not just the code."""
    result = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env={**ENV, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and result.returncode != 0:
        pytest.fail(
            f"`{' '.join(map(str, args))}` exited {result.returncode} in {cwd}\n"
            f"--- stdout ---\n{result.stdout[-6000:]}\n--- stderr ---\n{result.stderr[-6000:]}",
            pytrace=False,
        )
    return result


def run_project_tests(python: Path, project: Path, *paths: str, check: bool = True) -> subprocess.CompletedProcess:
    """The project's own pytest on ``paths``, importing the package from the project's ``src``
    (so one environment serves every bake of a task)."""
    args = ["-m", "pytest", "-q", "-p", "no:cacheprovider", *paths]
    return run(python, *args, cwd=project, env={"PYTHONPATH": str(project / "src")}, check=check)


def bake(output_dir: Path, **answers: str) -> Path:
    """Generate a project with the given answers (defaults elsewhere); return its folder."""
    output_dir.mkdir(parents=True, exist_ok=True)
    return Path(cookiecutter(str(TEMPLATE), no_input=True, extra_context=answers, output_dir=str(output_dir)))


SOURCE = TEMPLATE / "{{cookiecutter.__project_dir}}"
TASKS = DEFAULTS["task"]
# Per task: the embedded dataset, its number of examples, its classes, the accuracy a default `train` reaches.
EMBEDDED = {
    "tabular": ("src/my_ml_project/data/penguins.csv", 344, {"Adelie", "Chinstrap", "Gentoo"}, 0.95),
    "image": ("src/my_ml_project/data/digits.csv.gz", 1797, {str(d) for d in range(10)}, 0.97),
    "text": ("src/my_ml_project/data/trec.csv.gz", 5943, {"ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"}, 0.84),
}
# Tags that must never reach a generated file. GitHub expressions (`${{ ... }}`) stay in workflows.
TEMPLATE_TAG = re.compile(r"\{\{|\}\}|\{%|%\}|\{#|#\}")
CHOICES = {name: value for name, value in DEFAULTS.items() if isinstance(value, list) and not name.startswith("_")}


def files_of(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts}


def answers_with_defaults(**answers: str) -> dict[str, str]:
    """Every answer: the given ones, the first choice or the default for the rest."""
    defaults = {name: (value[0] if isinstance(value, list) else value) for name, value in DEFAULTS.items()}
    return {k: v for k, v in defaults.items() if not k.startswith("_")} | answers


def expected_files(package_name: str, **answers: str) -> set[str]:
    """The files a bake with these answers must hold: the template's names, rendered as cookiecutter does.

    A name whose conditional part renders empty (``{% if cookiecutter.ci == 'github' %}ci.yml{% endif %}``
    for another CI, a file of another task) is not generated.
    """
    context = answers_with_defaults(**answers) | {"package_name": package_name}
    expected = set()
    for name in files_of(SOURCE):
        parts = [jinja2.Template(part).render(cookiecutter=context) for part in name.split("/")]
        if all(parts):
            expected.add("/".join(parts))
    return expected


def unrendered_tags(project: Path) -> list[str]:
    """Every line of a generated file that still holds a template tag."""
    found = []
    for path in sorted(project.rglob("*")):
        if not path.is_file():
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:  # an image or a compressed dataset: no template reaches it
            continue
        if ".github" in path.parts:
            text = re.sub(r"\$\{\{.*?\}\}", "", text)
        for number, line in enumerate(text.splitlines(), 1):
            if TEMPLATE_TAG.search(line):
                found.append(f"{path.relative_to(project)}:{number}: {line.strip()}")
    return found


def pairwise(choices: dict[str, list[str]]) -> list[dict[str, str]]:
    """A small set of combinations holding every pair of values of every two options."""
    names = list(choices)
    uncovered = {((a, x), (b, y)) for a, b in itertools.combinations(names, 2) for x in choices[a] for y in choices[b]}
    combinations = []
    while uncovered:
        best = max(
            (dict(zip(names, values, strict=True)) for values in itertools.product(*choices.values())),
            key=lambda c: sum(((a, c[a]), (b, c[b])) in uncovered for a, b in itertools.combinations(names, 2)),
        )
        uncovered -= {((a, best[a]), (b, best[b])) for a, b in itertools.combinations(names, 2)}
        combinations.append(best)
    return combinations


def git_init(project: Path) -> None:
    run("git", "init", "-q", "-b", "main", cwd=project)
    run("git", "add", "-A", cwd=project)


def install(python: Path, *requirements: str, cwd: Path) -> None:
    """Install into the environment of ``python`` (uv where there is one, else pip), within the constraints."""
    uv = shutil.which("uv", path=ENV["PATH"])
    if uv:
        run(uv, "pip", "install", "-q", "--python", python, *requirements, cwd=cwd)
    else:
        run(python, "-m", "pip", "install", "-q", *requirements, cwd=cwd)


def make_env(path: Path, project: Path) -> Path:
    """A fresh environment holding ``project`` with every extra (test, serve, export, track); returns its python."""
    uv = shutil.which("uv", path=ENV["PATH"])
    if uv:
        run(uv, "venv", "-q", "--python", sys.executable, path, cwd=project)
    else:
        venv.create(path, with_pip=True)
    python = path / "bin" / "python"
    install(python, "-e", ".[test,serve,export,track]", cwd=project)
    if "UV_FIND_LINKS" in ENV:  # a local wheel folder holds the pinned torch: a CUDA build is a wrong turn
        listed = "import importlib.metadata as m; print(sorted({d.metadata['Name'] for d in m.distributions()}))"
        names = run(python, "-c", listed, cwd=project).stdout
        cuda = [name for name in ast.literal_eval(names) if name.lower().startswith("nvidia")]
        if cuda:
            pytest.fail(f"{path} took torch's CUDA build ({cuda[:3]} ...), not the wheel in {ENV['UV_FIND_LINKS']}")
    return python


@pytest.fixture(scope="session")
def task_project(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], tuple[Path, Path]]:
    """``task_project(task)``: (project, python) for a default bake of that task, in a git repository,
    installed in a fresh environment. Built once per test process and task."""
    made: dict[str, tuple[Path, Path]] = {}

    def get(task: str) -> tuple[Path, Path]:
        if task not in made:
            project = bake(tmp_path_factory.mktemp(f"default-{task}"), task=task)
            git_init(project)
            made[task] = project, make_env(tmp_path_factory.mktemp(f"env-{task}") / "venv", project)
        return made[task]

    return get


@pytest.fixture(scope="session")
def default_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project baked with every default answer, in a git repository."""
    project = bake(tmp_path_factory.mktemp("default"))
    git_init(project)
    return project


@pytest.fixture(scope="session")
def default_python(default_project: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The interpreter of a fresh environment holding the default project."""
    return make_env(tmp_path_factory.mktemp("env") / "venv", default_project)
