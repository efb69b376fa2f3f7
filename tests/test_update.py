"""Projects created with cruft take the template's later changes with `cruft update`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import BIN, TEMPLATE, run

pytestmark = pytest.mark.slow

UPSTREAM_LINE = "# checkpoints of sweeps\nsweeps/\n"


def commit(repo: Path, message: str) -> str:
    run("git", "add", "-A", cwd=repo)
    run("git", "commit", "-q", "-m", message, cwd=repo)
    return run("git", "rev-parse", "HEAD", cwd=repo).stdout.strip()


def test_cruft_update_brings_a_template_change_without_touching_other_files(tmp_path: Path) -> None:
    template = tmp_path / "template"
    shutil.copytree(TEMPLATE, template, ignore=shutil.ignore_patterns(".git", ".nox", ".venv", "__pycache__"))
    run("git", "init", "-q", "-b", "main", cwd=template)
    first = commit(template, "template as released")

    run(BIN / "cruft", "create", "--no-input", "--output-dir", tmp_path / "out", template, cwd=tmp_path)
    project = tmp_path / "out" / "my-ml-project"
    assert json.loads((project / ".cruft.json").read_text())["commit"] == first
    run("git", "init", "-q", "-b", "main", cwd=project)
    readme = project / "README.md"
    readme.write_text(readme.read_text() + "\nNotes of this project.\n")  # the user's own change
    commit(project, "project as generated, plus a note")
    run(BIN / "cruft", "check", cwd=project)

    gitignore = template / "{{cookiecutter.__project_dir}}" / ".gitignore"
    gitignore.write_text(gitignore.read_text() + UPSTREAM_LINE)
    second = commit(template, "ignore sweep outputs")

    assert run(BIN / "cruft", "check", cwd=project, check=False).returncode != 0, "cruft check missed the update"
    run(BIN / "cruft", "update", "--skip-apply-ask", "--allow-untracked-files", cwd=project)

    assert (project / ".gitignore").read_text().endswith(UPSTREAM_LINE)
    assert readme.read_text().endswith("Notes of this project.\n"), "the user's change was lost"
    changed = run("git", "status", "--porcelain", cwd=project).stdout.split("\n")
    changed_files = sorted(line[3:] for line in changed if line)
    assert changed_files == [".cruft.json", ".gitignore"], changed_files
    assert not list(project.rglob("*.rej")), "the update left rejected hunks"
    assert json.loads((project / ".cruft.json").read_text())["commit"] == second
    run(BIN / "cruft", "check", cwd=project)
