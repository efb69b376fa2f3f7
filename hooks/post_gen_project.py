"""Remove folders that conditional file names left empty (e.g. `.github/` without GitHub CI).

Only empty folders are removed, so running this again changes nothing.
"""

from __future__ import annotations

import tempfile
from pathlib import Path


def remove_this_copy() -> None:
    """Cookiecutter runs a rendered copy of this hook from the temporary folder and leaves it there."""
    this = Path(__file__).resolve()
    if this.parent == Path(tempfile.gettempdir()).resolve() and this.name != "post_gen_project.py":
        this.unlink(missing_ok=True)


if __name__ == "__main__":
    remove_this_copy()
    for folder in sorted(Path.cwd().rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
