"""Refuse bad answers before anything is written.

Cookiecutter removes the half-made project folder when this hook fails. The hook only
reads the answers, so running it again (on `cruft update`) is harmless.
"""

from __future__ import annotations

import json
import keyword
import re
import sys

# The answers as JSON: a quote or a backslash in an answer cannot break this file.
ANSWERS = json.loads(r"""{{ cookiecutter | tojson }}""")
# Names a package must not take: they would shadow what the project imports.
DEPENDENCIES = {
    "torch",
    "numpy",
    "pandas",
    "pandera",
    "pil",
    "pillow",
    "tqdm",
    "tokenizers",
    "pytest",
    "hypothesis",
    "nox",
    "tests",
    "test",
}
SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9._-]*[a-z0-9])?$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def problems(project_slug: str, package_name: str, author_email: str) -> list[str]:
    found = []
    if not package_name.isidentifier() or not package_name.isascii():
        found.append(f"package_name '{package_name}' is not a valid Python identifier (letters, digits, underscores)")
    elif keyword.iskeyword(package_name) or keyword.issoftkeyword(package_name):
        found.append(f"package_name '{package_name}' is a Python keyword")
    elif package_name in sys.stdlib_module_names or package_name.lower() in DEPENDENCIES:
        found.append(f"package_name '{package_name}' would shadow the module of the same name")
    elif package_name != package_name.lower():
        found.append(f"package_name '{package_name}' must be lower case (PEP 8)")
    if not SLUG.match(project_slug):
        found.append(
            f"project_slug '{project_slug}' must be lower-case letters, digits, '.', '_' or '-', "
            "starting and ending with a letter or digit"
        )
    if author_email and not EMAIL.match(author_email):
        found.append(f"author_email '{author_email}' does not look like an email address")
    return found


if __name__ == "__main__":
    found = problems(ANSWERS["project_slug"], ANSWERS["package_name"], ANSWERS["author_email"])
    for problem in found:
        print(f"error: {problem}", file=sys.stderr)
    sys.exit(1 if found else 0)
