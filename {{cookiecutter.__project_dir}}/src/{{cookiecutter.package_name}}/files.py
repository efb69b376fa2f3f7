"""Atomic file writes (a reader sees the old file or the new one, never half of one) and
fingerprints of files and folders."""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


@contextmanager
def atomic_open(path: str | Path, mode: str = "wb", *, overwrite: bool = True) -> Iterator[IO]:
    """Open a temporary file beside ``path``; on success fsync and rename it over ``path``.

    On any error the temporary file is removed and ``path`` is left as it was. With
    ``overwrite=False`` an existing ``path`` is never replaced, even one that appears while
    writing: FileExistsError.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp makes the file private (0600); give it the mode open() would have given it,
        # so that the user's group can read checkpoints and metrics where the umask allows.
        os.chmod(fd, 0o666 & ~current_umask())
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            _place_new(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def current_umask() -> int:
    """The process's umask, read without changing it where the system allows (Linux)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)  # elsewhere the only way to read it is to set it, briefly
    os.umask(mask)
    return mask


def _place_new(tmp: str, path: Path) -> None:
    """Give the finished ``tmp`` the name ``path`` unless that name is taken."""
    try:
        os.link(tmp, path)  # atomic, and fails where ``path`` exists
    except FileExistsError:
        raise FileExistsError(f"{path}: already exists") from None
    except OSError:  # a file system without hard links: check, then rename
        if path.exists():
            raise FileExistsError(f"{path}: already exists") from None
        os.replace(tmp, path)
        return
    os.unlink(tmp)


def write_text(text: str, path: str | Path, *, overwrite: bool = True) -> None:
    with atomic_open(path, "w", overwrite=overwrite) as handle:
        handle.write(text)


def write_bytes(data: bytes, path: str | Path, *, overwrite: bool = True) -> None:
    with atomic_open(path, "wb", overwrite=overwrite) as handle:
        handle.write(data)


def check_output(output: str | Path, reads: Iterable[str | Path], *, overwrite: bool) -> None:
    """Refuse an output path that is a file the command reads or lies inside a folder it reads, and
    an existing output unless ``overwrite``: ValueError saying what to do instead."""
    output = Path(output)
    for source in map(Path, reads):
        if source.is_dir() and output.resolve().is_relative_to(source.resolve()):
            raise ValueError(f"{output}: inside {source}, which is read as input; write the output elsewhere")
        if output.exists() and source.exists() and os.path.samefile(output, source):
            raise ValueError(f"{output}: the output would replace {source}, which is read as input; write it elsewhere")
    if output.is_dir():
        raise ValueError(f"{output}: a folder; the output must be a file")
    if output.exists() and not overwrite:
        raise ValueError(f"{output}: already exists; pass --overwrite to replace it")


def write_json(values: dict[str, Any], path: str | Path) -> None:
    """Write ``values`` as strict JSON: a nan or infinity (which JSON has no word for) is a
    ValueError naming where it sits, and nothing is written."""
    try:
        text = json.dumps(values, indent=2, sort_keys=True, allow_nan=False)
    except ValueError:
        raise ValueError(f"{path}: {', '.join(_non_finite(values))} cannot be written as JSON") from None
    write_text(text + "\n", path)


def _non_finite(value: Any, where: str = "") -> list[str]:
    """``where=value`` for every nan or infinity in nested dicts and lists."""
    if isinstance(value, float) and not math.isfinite(value):
        return [f"{where or 'the value'}={value}"]
    if isinstance(value, dict):
        return [found for key, item in value.items() for found in _non_finite(item, f"{where}.{key}".lstrip("."))]
    if isinstance(value, (list, tuple)):
        return [found for i, item in enumerate(value) for found in _non_finite(item, f"{where}[{i}]")]
    return []


def fingerprint(path: str | Path) -> str:
    """The sha256 of a file's bytes, or of a folder: every file's path (relative, ``/``-separated)
    and sha256, in sorted order, so a file renamed, added, removed or edited changes it."""
    path = Path(path)
    if path.is_file():
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such file or folder")
    lines = [
        f"{child.relative_to(path).as_posix()}\0{fingerprint(child)}\n"
        for child in sorted(path.rglob("*"))
        if child.is_file()
    ]
    return hashlib.sha256("".join(lines).encode()).hexdigest()
