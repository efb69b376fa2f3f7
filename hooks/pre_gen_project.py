"""Refuse bad answers before anything is written.

Cookiecutter makes the project folder before this hook runs and removes it when the hook
fails. The folder is named by ``__project_dir`` (cookiecutter.json): the slug when the
slug is a plain name of at most 100 characters, else a throwaway name, so that a slug such
as ``a/b``, an empty one or a 300-character one is refused here, with a message, instead of
by the file system.
The hook only reads the answers, so running it again (on ``cruft update``) is harmless.
"""

from __future__ import annotations

import json
import keyword
import re
import sys
import tempfile
import unicodedata
from pathlib import Path

# The answers as JSON: a quote or a backslash in an answer cannot break this file.
ANSWERS = json.loads(r"""{{ cookiecutter | tojson }}""")
# Names a package must not take: they would shadow what the project imports.
DEPENDENCIES = {
    "torch",
    "numpy",
    "pandas",
    "pandera",
    "pyarrow",
    "pil",
    "pillow",
    "tqdm",
    "tokenizers",
    "matplotlib",
    "mpl_toolkits",
    "pylab",
    "contourpy",
    "cycler",
    "fonttools",
    "kiwisolver",
    "packaging",
    "pyparsing",
    "dateutil",
    "tzdata",
    "fastapi",
    "starlette",
    "pydantic",
    "uvicorn",
    "python_multipart",
    "multipart",
    "pytest",
    "pytest_cov",
    "pytest_randomly",
    "pytest_regressions",
    "xdist",
    "execnet",
    "hypothesis",
    "httpx",
    "httpx2",
    "onnx",
    "mlflow",
    "onnxscript",
    "onnx_ir",
    "onnxruntime",
    "ml_dtypes",
    "google",
    "flatbuffers",
    "transformers",
    "huggingface_hub",
    "safetensors",
    "regex",
    "yaml",
    "typer",
    "nox",
    "tests",
    "test",
}
# The longest slug and package name: cookiecutter.json cuts a slug made from project_name to this,
# and every generated import line that names the package stays within ruff's 120 columns.
MAX_NAME_LENGTH = 32
SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9._-]*[a-z0-9])?$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# Line breaks and other control characters, unpaired surrogates: not one line of text.
NOT_TEXT = {"Cc", "Cs", "Zl", "Zp"}
FREE_TEXT = ("project_name", "description", "author_name", "author_email")


def text_problems(answers: dict[str, str]) -> list[str]:
    found = []
    if not answers["project_name"].strip():
        found.append("project_name is empty")
    for key in FREE_TEXT:
        bad = sorted({f"U+{ord(char):04X}" for char in answers[key] if unicodedata.category(char) in NOT_TEXT})
        if bad:
            found.append(f"{key} {answers[key]!r} holds characters that do not belong in one line of text: {bad}")
    return found


def slug_problems(project_slug: str, project_name: str) -> list[str]:
    if not project_slug:
        if any(char.isalnum() for char in project_name):
            return ["project_slug is empty"]
        return [
            f"project_slug is empty: project_name {project_name!r} has no letter or digit to make it from; "
            "give project_slug (and package_name) yourself"
        ]
    if not SLUG.match(project_slug):
        return [
            f"project_slug {project_slug!r} must be lower-case letters, digits, '.', '_' or '-', "
            "starting and ending with a letter or digit"
        ]
    if len(project_slug) > MAX_NAME_LENGTH:
        return [f"project_slug is {len(project_slug)} characters long, at most {MAX_NAME_LENGTH}"]
    return []


def package_problems(package_name: str) -> list[str]:
    if not package_name.isidentifier() or not package_name.isascii():
        return [
            f"package_name {package_name!r} is not a valid Python identifier "
            "(letters, digits and underscores, not starting with a digit)"
        ]
    if len(package_name) > MAX_NAME_LENGTH:
        return [f"package_name is {len(package_name)} characters long, at most {MAX_NAME_LENGTH}"]
    if keyword.iskeyword(package_name) or keyword.issoftkeyword(package_name):
        return [f"package_name {package_name!r} is a Python keyword"]
    if package_name in sys.stdlib_module_names or package_name.lower() in DEPENDENCIES:
        return [f"package_name {package_name!r} would shadow the module of the same name"]
    if package_name != package_name.lower():
        return [f"package_name {package_name!r} must be lower case (PEP 8)"]
    return []


def problems(answers: dict[str, str]) -> list[str]:
    found = text_problems(answers)
    found += slug_problems(answers["project_slug"], answers["project_name"])
    found += package_problems(answers["package_name"])
    if answers["author_email"] and not EMAIL.match(answers["author_email"]):
        found.append(f"author_email {answers['author_email']!r} does not look like an email address")
    return found


def remove_this_copy() -> None:
    """Cookiecutter runs a rendered copy of this hook from the temporary folder and leaves it there."""
    this = Path(__file__).resolve()
    if this.parent == Path(tempfile.gettempdir()).resolve() and this.name != "pre_gen_project.py":
        this.unlink(missing_ok=True)


if __name__ == "__main__":
    remove_this_copy()
    found = problems(ANSWERS)
    for problem in found:
        print(f"error: {problem}", file=sys.stderr)
    sys.exit(1 if found else 0)
