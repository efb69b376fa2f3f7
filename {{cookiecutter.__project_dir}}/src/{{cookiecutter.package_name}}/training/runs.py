"""One folder per training run, never reused, and a ``latest`` pointer beside them.

A run folder holds everything needed to reproduce the run: ``config.json`` (the resolved
settings, the seed among them: ``train --config <folder>/config.json`` trains it again),
``environment.json`` (Python, the packages, the machine, the git commit, the data's
sha256), then ``checkpoint.pt``, ``metrics.json`` and the report (``report.html`` with its
pictures ``loss.png``, ``accuracy.png``, ``confusion.png`` and ``calibration.png``).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from ..checkpoint import load_checkpoint
from ..config import TrainConfig
from ..data import embedded_dataset_path, load_examples
from ..files import fingerprint, write_json, write_text
from ..task import Examples
from .split import split_examples

CONFIG_NAME = "config.json"
ENVIRONMENT_NAME = "environment.json"
LATEST = "latest"
# What a run's checkpoint and metrics are called; another run's files in a folder make it taken.
RUN_FILES = ("checkpoint.pt", "metrics.json", CONFIG_NAME)
# Settings that say where a run goes and what it writes besides, not what it learns: left out
# of the folder name's hash.
LOCATION_FIELDS = (
    "output_dir",
    "runs_dir",
    "name",
    "resume",
    "device",
    "num_workers",
    "report",
    "track",
    "tracking_uri",
)
DISTRIBUTION = "{{ cookiecutter.project_slug }}"
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def config_hash(config: TrainConfig) -> str:
    """Eight hex digits that change with any setting that changes what the run learns."""
    settings = {k: v for k, v in config.to_dict().items() if k not in LOCATION_FIELDS}
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:8]


def run_folder_name(config: TrainConfig, now: float | None = None) -> str:
    """``<UTC time stamp>-<config hash>``, e.g. ``20261125-104512-3fa2c1d0``: sorts by time."""
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime(now)) + "-" + config_hash(config)


def claim_run_folder(config: TrainConfig) -> Path:
    """Create this run's folder and return it; an earlier run's folder is never reused.

    ``output_dir`` names the folder exactly; else ``runs_dir``/``name``, or a time stamp and
    config hash under ``runs_dir`` (a suffix ``-2``, ``-3`` when two runs start in the same
    second with the same settings). ValueError when the folder asked for holds another run.
    """
    if config.output_dir is not None:
        folder = Path(config.output_dir)
        taken = [name for name in RUN_FILES if (folder / name).exists()]
        resuming_here = config.resume is not None and Path(config.resume).resolve().parent == folder.resolve()
        if taken and not resuming_here:
            raise ValueError(
                f"{folder} already holds a run ({', '.join(taken)}); choose another --output-dir, "
                "or leave it out for a new folder under runs/"
            )
        folder.mkdir(parents=True, exist_ok=True)
        return folder
    root = Path(config.runs_dir)
    root.mkdir(parents=True, exist_ok=True)
    if config.name is not None:
        if not NAME_PATTERN.fullmatch(config.name) or config.name == LATEST:
            raise ValueError(
                f"run name {config.name!r}: use letters, digits, '.', '_' and '-', starting with a letter or digit, "
                f"and not {LATEST!r}"
            )
        folder = root / config.name
        try:
            folder.mkdir()
        except FileExistsError:
            raise ValueError(f"{folder} exists: an earlier run has that name; choose another --name") from None
        return folder
    base = run_folder_name(config)
    for attempt in range(1, 1000):
        folder = root / (base if attempt == 1 else f"{base}-{attempt}")
        try:
            folder.mkdir()
            return folder
        except FileExistsError:
            continue
    raise RuntimeError(f"no free run folder for {base} under {root}")


def point_latest_at(folder: Path) -> Path:
    """Make ``latest`` beside ``folder`` name it: a relative symbolic link, replaced atomically;
    where links cannot be made, a text file ``latest`` holding the folder's name."""
    link = folder.parent / LATEST
    temporary = folder.parent / f".{LATEST}.{os.getpid()}"
    try:
        temporary.unlink(missing_ok=True)
        temporary.symlink_to(folder.name, target_is_directory=True)
        os.replace(temporary, link)
    except OSError:  # no symbolic links here (some file systems, Windows without the right)
        temporary.unlink(missing_ok=True)
        write_text(folder.name + "\n", link)
    return link


def resolve_latest(runs_dir: str | Path = "runs") -> Path:
    """The newest run folder under ``runs_dir`` (through the link or the text file)."""
    link = Path(runs_dir) / LATEST
    if link.is_dir():
        return link.resolve()
    if link.is_file():
        return Path(runs_dir) / link.read_text().strip()
    raise FileNotFoundError(f"{link}: no run has been recorded under {runs_dir}")


def environment(config: TrainConfig) -> dict[str, Any]:
    """What the run ran on: enough to set the same environment up again."""
    data = Path(config.data) if config.data is not None else embedded_dataset_path()
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": package_versions(),
        "torch": torch.__version__,  # with the build: the CPU and CUDA builds share a package version
        "cuda": torch.version.cuda if torch.cuda.is_available() else None,
        "git": git_state(),
        "data": {"path": str(data), "sha256": fingerprint(data)},
        "command": sys.argv,
    }


def package_versions() -> dict[str, str]:
    """This project's version and the installed version of each of its dependencies."""
    try:
        versions = {DISTRIBUTION: metadata.version(DISTRIBUTION)}
        requirements = metadata.requires(DISTRIBUTION) or []
    except metadata.PackageNotFoundError:  # run from a source tree that is not installed
        versions, requirements = {}, ["torch", "numpy", "pandas"]
    for requirement in requirements:
        if "extra ==" in requirement:
            continue
        name = re.split(r"[\s\[<>=!~;(]", requirement, maxsplit=1)[0]
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def git_state() -> dict[str, Any] | None:
    """The commit and whether the work tree had changes, when the run started inside a git repository."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        changes = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "uncommitted_changes": bool(changes.strip())}


def record_run(folder: Path, config: TrainConfig) -> None:
    """Write the run's resolved settings and environment into its folder."""
    write_json(config.to_dict(), folder / CONFIG_NAME)
    write_json(environment(config), folder / ENVIRONMENT_NAME)


def examples_to_score(checkpoint: str | Path, data: str | None = None) -> tuple[Examples, str]:
    """The labelled examples ``evaluate`` scores and ``export`` checks on, and what they are:
    ``data`` in full, else the checkpoint's own test split (its run's data, split by its settings)."""
    if data is not None:
        return load_examples(data), data
    config = TrainConfig.from_dict(load_checkpoint(checkpoint).config)
    examples = load_examples(config.data)
    split = split_examples(examples, config.val_fraction, config.test_fraction, config.seed)
    return examples.subset(split.test), "test split"
