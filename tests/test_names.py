"""Any project name ends in a working project or in the template's own message, nothing half-made.

A name becomes a folder, a distribution, a package and a title: cookiecutter.json slugifies
it for the first three and the generated files quote it where it lands inside a string.
Every other outcome (a traceback, an OSError, a folder left behind) is a bug.
"""

from __future__ import annotations

import ast
import io
import json
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import tomllib
from conftest import BIN, DEFAULTS, TEMPLATE, bake, run
from cookiecutter.exceptions import FailedHookException
from cookiecutter.main import cookiecutter
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

QUESTIONS = [name for name in DEFAULTS if not name.startswith("_")]
# Pieces that have broken templates: quotes, escapes, Jinja and shell syntax, path separators,
# argparse's %-template, letters that do or do not transliterate to ASCII.
TRICKY = [
    '"', "'", '"""', "\\", "\\n", "\t", "\x1b[31m", "\u200b", "\u202e", " ", "-", "_", ".", "0",
    "{{", "}}", "{%", "%}", "{#", "{{ cookiecutter.project_slug }}", "{% raw %}", "%(prog)s", "%", "#", "[bold]",
    "$(touch x)", "`id`", ";", "|", "&", "*", "/", "..", "../", "/etc", "C:\\",
    "Détection", "Straße", "机器学习", "Ωμέγα", "🎉", "👩\u200d🔬",
]  # fmt: skip
# A name as a person types it at the prompt: one line, without the spaces the prompt strips. Control
# characters (refused) come from TRICKY only, so that most names are ones a person could mean.
LETTERS = st.characters(exclude_categories=("Cc", "Cs"))
TYPED_NAMES = (
    st.lists(st.one_of(st.text(LETTERS, max_size=12), st.sampled_from(TRICKY))).map("".join).map(str.strip).filter(bool)
)
LONG_NAMES = st.text(LETTERS, min_size=200, max_size=400).map(str.strip).filter(bool)
NAMES = st.one_of(TYPED_NAMES, TYPED_NAMES, TYPED_NAMES, LONG_NAMES)


def bake_as_typed(output_dir: Path, name: str) -> Path:
    """Generate as a person does: type ``name`` at the first prompt, Enter (the default) at the others.

    Typed answers reach the template as typed; an answer given on the command line
    (``project_name=...``) is a Jinja template to cookiecutter, so ``{{`` there is cookiecutter's.
    """
    answers = io.StringIO(name + "\n" * len(QUESTIONS))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("sys.stdin", answers)
        return Path(cookiecutter(str(TEMPLATE), output_dir=str(output_dir)))


def snapshot(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def output_folder(root: Path) -> Path:
    """A fresh output folder that already holds a file: it must be exactly as it was after a refusal."""
    folder = root / uuid.uuid4().hex
    (folder / "existing").mkdir(parents=True)
    (folder / "existing" / "notes.txt").write_text("not the template's\n")
    return folder


def assert_bakes_or_is_refused(
    name: str, output: Path, capfd: pytest.CaptureFixture[str], bake_name: Callable[[Path, str], Path]
) -> Path | None:
    """Bake ``name``; return the project, or None after checking the refusal was clean."""
    before = snapshot(output)
    capfd.readouterr()
    try:
        project = bake_name(output, name)
    except FailedHookException:
        errors = [line for line in capfd.readouterr().err.splitlines() if line.startswith("error: ")]
        assert errors, f"{name!r} was refused without the template's message"
        assert snapshot(output) == before, f"refusing {name!r} changed the output folder: {snapshot(output)}"
        return None
    assert sorted(p.name for p in output.iterdir()) == sorted(["existing", project.name]), list(output.iterdir())
    assert_project_carries_the_name(project, name)
    return project


def assert_project_carries_the_name(project: Path, name: str) -> None:
    """The folder, distribution and package come from the slug; the title and NAME are the name as typed."""
    metadata = tomllib.loads((project / "pyproject.toml").read_text())["project"]
    slug = metadata["name"]
    assert project.name == slug and 0 < len(slug) <= 32, f"{name!r}: folder {project.name!r}, distribution {slug!r}"
    (package,) = (p.name for p in (project / "src").iterdir())
    assert metadata["scripts"] == {slug: f"{package}.cli:main"}, metadata["scripts"]
    assert (project / "README.md").read_text().splitlines()[0] == f"# {name}", f"README title of {name!r}"
    module = ast.parse((project / "src" / package / "__init__.py").read_text())
    constants = {
        node.targets[0].id: ast.literal_eval(node.value) for node in module.body if isinstance(node, ast.Assign)
    }
    assert constants["NAME"] == name, f"NAME is {constants['NAME']!r}, the name typed was {name!r}"


def assert_lint_clean(project: Path) -> None:
    """The generated project's own ruff settings pass, as its lint session would check them."""
    run(BIN / "ruff", "check", "--no-cache", "--quiet", ".", cwd=project)
    run(BIN / "ruff", "format", "--no-cache", "--check", "--quiet", ".", cwd=project)


@pytest.mark.parametrize(
    ("name", "slug", "package"),
    [
        ("Détection de fraude", "detection-de-fraude", "detection_de_fraude"),
        ('Bob\'s "quoted" $(touch x)/y', "bob-s-quoted-touch-x-y", "bob_s_quoted_touch_x_y"),
        ("a" * 300, "a" * 32, "a" * 32),
        ("a" * 113, "a" * 32, "a" * 32),  # `NAME = "a...a"` is a line ruff's formatter would wrap in parentheses
        ("Machine learning for fraud detection", "machine-learning-for-fraud", "machine_learning_for_fraud"),
        ("机器学习 {{ x }} {% if %}", "ji-qi-xue-xi-x-if", "ji_qi_xue_xi_x_if"),
    ],
    ids=["accents", "quotes-shell-slash", "300-characters", "113-characters", "cut-at-a-word", "cjk-and-jinja"],
)
def test_a_name_is_slugified_into_folder_and_package_and_kept_as_typed(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], name: str, slug: str, package: str
) -> None:
    project = assert_bakes_or_is_refused(name, output_folder(tmp_path), capfd, bake_as_typed)
    assert project is not None, f"{name!r} was refused"
    assert project.name == slug and (project / "src" / package).is_dir(), sorted(p.name for p in project.iterdir())
    assert not list(tmp_path.rglob("x")), "a shell command in the name ran"
    assert_lint_clean(project)


@pytest.mark.parametrize(
    ("answers", "message"),
    [
        ({"project_name": "🎉"}, "project_slug is empty: project_name '🎉' has no letter or digit"),
        ({"project_name": ""}, "project_name is empty"),
        ({"project_name": "   "}, "project_name is empty"),
        ({"project_name": "Torch"}, "package_name 'torch' would shadow the module of the same name"),
        ({"project_name": "JSON"}, "package_name 'json' would shadow the module of the same name"),
        ({"project_name": "class"}, "package_name 'class' is a Python keyword"),
        ({"project_name": "3D Vision"}, "package_name '3d_vision' is not a valid Python identifier"),
        ({"project_name": "two\nlines"}, "project_name 'two\\nlines' holds characters that do not belong"),
        ({"description": "one\x1b[31mtwo"}, "description 'one\\x1b[31mtwo' holds characters that do not belong"),
        ({"project_slug": "a/b"}, "project_slug 'a/b' must be lower-case letters"),
        ({"project_slug": "../escape"}, "project_slug '../escape' must be lower-case letters"),
        ({"project_slug": ".."}, "project_slug '..' must be lower-case letters"),
        ({"project_slug": ""}, "project_slug is empty"),
        ({"project_slug": "b" * 300}, "project_slug is 300 characters long, at most 32"),
        ({"package_name": "a/b"}, "package_name 'a/b' is not a valid Python identifier"),
        ({"package_name": "p" * 300}, "package_name is 300 characters long, at most 32"),
    ],
    ids=[
        "emoji-only",
        "empty",
        "spaces",
        "dependency",
        "stdlib",
        "keyword",
        "leading-digit",
        "line-break",
        "description-terminal-escape",
        "slug-with-slash",
        "slug-escaping-the-output",
        "slug-dot-dot",
        "slug-empty",
        "slug-300-characters",
        "package-with-slash",
        "package-300-characters",
    ],
)
def test_a_bad_name_is_refused_with_a_message_and_the_output_folder_unchanged(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], answers: dict[str, str], message: str
) -> None:
    output = output_folder(tmp_path / "out")
    before = snapshot(tmp_path)
    with pytest.raises(FailedHookException):
        bake(output, **answers)
    err = capfd.readouterr().err
    assert message in err, err
    assert snapshot(tmp_path) == before, f"the bake left {sorted(set(snapshot(tmp_path)) - set(before))}"


def test_an_absolute_slug_is_refused_and_nothing_is_made_there(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    elsewhere = tmp_path / "elsewhere"
    with pytest.raises(FailedHookException):
        bake(output_folder(tmp_path), project_slug=str(elsewhere))
    assert "must be lower-case letters" in capfd.readouterr().err
    assert not elsewhere.exists(), f"the bake made {elsewhere}"


def test_quotes_and_backslashes_in_free_text_keep_the_project_valid(tmp_path: Path) -> None:
    answers = {
        "project_name": 'Say "hi" \\ %(prog)s',
        "description": 'He said "no" \\ C:\\new',
        "author_name": 'O"Brien \\',
        "author_email": "o.brien@example.com",
    }
    project = bake(tmp_path, **answers)
    metadata = tomllib.loads((project / "pyproject.toml").read_text())["project"]
    assert metadata["description"] == answers["description"]
    assert metadata["authors"] == [{"name": answers["author_name"], "email": answers["author_email"]}]
    assert_project_carries_the_name(project, answers["project_name"])
    assert_lint_clean(project)


@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(name=NAMES)
def test_any_typed_name_bakes_a_valid_project_or_is_refused_cleanly(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], name: str
) -> None:
    """Quick: every file that holds the name is checked statically; the lint of the bake runs too."""
    project = assert_bakes_or_is_refused(name, output_folder(tmp_path), capfd, bake_as_typed)
    event("refused" if project is None else "baked")
    if project is not None:
        assert_lint_clean(project)


# One interpreter imports each baked package and asks its CLI for --help, as `python -m PACKAGE --help`.
IMPORT_AND_HELP = """
import contextlib, io, json, runpy, sys
answers = []
for src, package in json.loads(sys.argv[1]):
    sys.path.insert(0, src)
    sys.argv = [package, "--help"]
    shown = io.StringIO()
    with contextlib.redirect_stdout(shown):
        try:
            runpy.run_module(package, run_name="__main__", alter_sys=True)
            status = "no exit"
        except SystemExit as exit:
            status = exit.code
    answers.append({"status": status, "help": shown.getvalue(), "name": sys.modules[package].NAME})
    sys.path.remove(src)
    for module in [m for m in sys.modules if m == package or m.startswith(package + ".")]:
        del sys.modules[module]
print(json.dumps(answers))
"""


@pytest.mark.slow
def test_projects_baked_from_typed_names_import_and_answer_help(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], task_project: Callable[[str], tuple[Path, Path]]
) -> None:
    _, python = task_project("tabular")  # an environment with the tabular project's dependencies
    baked: list[tuple[str, Path]] = []

    @settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(name=NAMES)
    def bake_one(name: str) -> None:
        project = assert_bakes_or_is_refused(name, output_folder(tmp_path), capfd, bake_as_typed)
        if project is not None:
            baked.append((name, project))

    bake_one()
    assert baked, "no name of the sample made a project"
    packages = [(str(p / "src"), next((p / "src").iterdir()).name) for _, p in baked]
    result = run(python, "-c", IMPORT_AND_HELP, json.dumps(packages), cwd=tmp_path)
    for (name, project), answer in zip(baked, json.loads(result.stdout), strict=True):
        assert answer["status"] == 0, f"`python -m` {project.name} --help exited {answer['status']}"
        assert answer["name"] == name, f"{project.name}: NAME is {answer['name']!r}, typed {name!r}"
        shown, expected = "".join(answer["help"].split()), "".join(name.split())
        assert expected in shown, f"--help of {project.name} does not show {name!r}:\n{answer['help']}"
