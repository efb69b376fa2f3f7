"""The run's model card, ``MODEL_CARD.md``: what the model is, the data it learned from and was
tested on, how well it does there (with the test split's size, an interval and its
calibration), its training settings, what it ran on and how to train it again, all filled from
what the run knows. What the model is for, and where it must not be trusted, is for its owner
to write: the card's first section says so.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from ..config import TrainConfig
from ..files import write_text
from .metrics import CALIBRATION_BINS, SCORES, confusion_matrix, expected_calibration_error
from .runs import CONFIG_NAME, DISTRIBUTION, ENVIRONMENT_NAME

CARD_NAME = "MODEL_CARD.md"


def wilson_interval(right: int, total: int, z: float = 1.96) -> tuple[float, float]:
    """The 95% Wilson score interval of the share ``right / total``: where the accuracy of the
    model on data like the test split lies, given how few examples measured it."""
    if total <= 0:
        raise ValueError("an interval needs at least one example")
    share, spread = right / total, z * z / total
    centre = (share + spread / 2) / (1 + spread)
    half = z * math.sqrt(share * (1 - share) / total + spread / (4 * total)) / (1 + spread)
    return max(0.0, centre - half), min(1.0, centre + half)


def write_card(
    folder: str | Path,
    *,
    metrics: dict[str, Any],
    classes: Sequence[str],
    probabilities: torch.Tensor,
    labels: torch.Tensor,
) -> Path:
    """Write ``MODEL_CARD.md`` into the run's ``folder`` (which holds its ``config.json`` and
    ``environment.json``), from ``metrics`` (what ``metrics.json`` holds) and the model's
    ``probabilities`` (N, C) on the test split with their ``labels`` (N,); the card's path."""
    folder = Path(folder)
    config = json.loads((folder / CONFIG_NAME).read_text())
    environment = json.loads((folder / ENVIRONMENT_NAME).read_text())
    text = render_card(
        folder.name,
        config=config,
        environment=environment,
        metrics=metrics,
        classes=classes,
        probabilities=probabilities,
        labels=labels,
    )
    write_text(text, folder / CARD_NAME)
    return folder / CARD_NAME


def _pretrained_row(config: dict[str, Any]) -> list[str]:
    """The pretrained model a run started from and how it was fine-tuned, where it started from one."""
    if not config.get("pretrained"):
        return []
    how = "backbone frozen, head trained" if config.get("freeze_backbone") else "every weight fine-tuned"
    return [f"| starts from | `{config['pretrained']}` ({how}) |"]


def render_card(
    run: str,
    *,
    config: dict[str, Any],
    environment: dict[str, Any],
    metrics: dict[str, Any],
    classes: Sequence[str],
    probabilities: torch.Tensor,
    labels: torch.Tensor,
) -> str:
    """The card as Markdown."""
    rows = metrics["rows"]
    matrix = confusion_matrix(probabilities.argmax(dim=1), labels, len(classes))
    tested, right = int(matrix.sum()), int(matrix.diagonal().sum())
    low, high = wilson_interval(right, tested)
    error = expected_calibration_error(probabilities, labels, CALIBRATION_BINS)
    model_options = TrainConfig.from_dict(config).model_options()
    options = ", ".join(f"{key}={value}" for key, value in sorted(model_options.items()))
    processes = int(metrics.get("processes", 1))
    scores = [
        f"| {name} | {_number(metrics.get(f'test_{name}'))} | {_number(metrics.get(f'val_{name}'))} |"
        for name in SCORES
    ]
    per_class = [
        f"| {_cell(name)} | {int(counts.sum())} | {_share(int(counts[index]), int(counts.sum()))} |"
        for index, (name, counts) in enumerate(zip(classes, matrix, strict=True))
    ]
    git = environment.get("git") or {}
    data = environment.get("data", {})
    config_path = Path(config.get("output_dir") or run, CONFIG_NAME).as_posix()
    again = [f"{DISTRIBUTION} train --config {config_path}"]
    if git.get("commit"):
        again.insert(0, f"git checkout {git['commit']}")
    lines = [
        f"# Model card: `{run}`",
        "",
        "## Intended use and limits",
        "",
        "_For the model's owner to write._ What the model is for and what it is not for; who acts on its",
        "answers and what a wrong one costs; the inputs it was never tested on (other sources, periods,",
        "populations); the classes or groups where its figures below are weakest. Nothing in the rest of",
        "this card answers that: it says what was measured, on which data.",
        "",
        "## Model",
        "",
        "| | |",
        "| --- | --- |",
        f"| model | `{config.get('model')}` ({options}) |",
        *_pretrained_row(config),
        f"| weights | epoch {metrics.get('kept_epoch')} of {metrics.get('epochs')} (`--keep {config.get('keep')}`) |",
        f"| trained | seed {config.get('seed')}, {processes} process{'es' if processes > 1 else ''} on "
        f"{metrics.get('device')}, {config.get('precision')}, {metrics.get('seconds')} s |",
        "",
        "## Data",
        "",
        "| | |",
        "| --- | --- |",
        f"| source | `{data.get('path')}` |",
        f"| sha256 | `{data.get('sha256')}` |",
        f"| rows | {rows['train']} training, {rows['val']} validation, {tested} test |",
        f"| classes | {', '.join(_cell(name) for name in classes)} |",
        "",
        f"## Evaluation on the held-out test split ({tested} examples)",
        "",
        f"Test accuracy {_number(right / tested)}: {right} of {tested} right; 95% interval "
        f"{_number(low)} to {_number(high)} (Wilson), the range that so few examples leave open.",
        f"Expected calibration error {_number(error)} ({CALIBRATION_BINS} equal-width confidence bins): the mean",
        "gap between how sure the model is and how often it is right. The report (`report.html`) draws both.",
        "",
        "| score | test | validation |",
        "| --- | --- | --- |",
        *scores,
        "",
        "| class | test examples | predicted right |",
        "| --- | --- | --- |",
        *per_class,
        "",
        "## Training settings",
        "",
        "```json",
        json.dumps(config, indent=2, sort_keys=True),
        "```",
        "",
        "## Environment",
        "",
        f"Python {environment.get('python')}, torch {environment.get('torch')}, on {environment.get('platform')}.",
        f"Code: {_code(git)}.",
        "",
        "## Train it again",
        "",
        "```sh",
        *again,
        "```",
        "",
        "On the same machine and the same data (the sha256 above), this trains the same weights.",
        "",
    ]
    return "\n".join(lines)


def _number(value: Any) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.4f}"


def _share(part: int, whole: int) -> str:
    return f"{part} ({100 * part / whole:.0f} percent)" if whole else "–"


def _cell(text: str) -> str:
    """``text`` as one Markdown table cell (a bar would end the cell, a line break the row)."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _code(git: dict[str, Any]) -> str:
    if not git.get("commit"):
        return "not in a git repository when it ran"
    changes = "with uncommitted changes, which the commit does not hold" if git.get("uncommitted_changes") else "clean"
    return f"commit `{git['commit']}` ({changes})"
