"""Remove folders that conditional file names left empty (e.g. `.github/` without GitHub CI).

Only empty folders are removed, so running this again changes nothing.
"""

from __future__ import annotations

from pathlib import Path

for folder in sorted(Path.cwd().rglob("*"), key=lambda p: len(p.parts), reverse=True):
    if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
