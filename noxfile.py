"""The template's own checks: ``nox`` runs them all (lint, then the tests)."""

from __future__ import annotations

from pathlib import Path

import nox

nox.needs_version = ">=2024.10.9"
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["lint", "tests"]

ROOT = Path(__file__).parent
CONSTRAINTS = ("-c", str(ROOT / "constraints.txt"))
PYTHON_FILES = ("hooks", "local_extensions.py", "tests", "noxfile.py")
TEST_REQUIREMENTS = (
    "cookiecutter",
    "cruft",
    "nox",
    "uv",
    "virtualenv",
    "pytest",
    "pytest-xdist",
    "hypothesis",
    "ruff",
    "pre-commit",
    "check-jsonschema",
    "zizmor",
)


@nox.session
def lint(session: nox.Session) -> None:
    """Ruff over the template's own Python (hooks, Jinja filters, tests, this file)."""
    session.install(*CONSTRAINTS, "ruff")
    session.run("ruff", "check", *PYTHON_FILES)
    session.run("ruff", "format", "--check", *PYTHON_FILES)


@nox.session
def tests(session: nox.Session) -> None:
    """Bake projects, install them in fresh environments, run their tests, sessions and CLI."""
    session.install(*CONSTRAINTS, *TEST_REQUIREMENTS)
    session.run("pytest", *session.posargs)
