"""Checkpoints: written atomically, read with ``weights_only=True``, checked on load."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..files import atomic_open

FORMAT_VERSION = 1
REQUIRED_KEYS = frozenset(
    {
        "format_version",
        "model_name",
        "model_options",
        "model_state",
        "optimizer_state",
        "epoch",
        "rng_state",
        "config",
        "preprocessor",
    }
)


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: missing, truncated, corrupt or for another model."""


def save_checkpoint(payload: dict[str, Any], path: str | Path) -> Path:
    """Write ``payload`` to ``path`` through a temporary file and a rename.

    A crash while writing leaves the previous checkpoint intact and no partial file.
    """
    missing = REQUIRED_KEYS - payload.keys()
    if missing:
        raise CheckpointError(f"checkpoint payload lacks {sorted(missing)}")
    with atomic_open(path) as handle:
        torch.save(payload, handle)
    return Path(path)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint onto the CPU with ``weights_only=True``; CheckpointError if unusable."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a damaged file fails deep inside torch.load in many ways (IndexError, KeyError, ...)
        detail = " ".join(str(err).split()) or type(err).__name__  # one line, for the CLI
        raise CheckpointError(f"{path}: not a readable checkpoint (truncated or corrupt?): {detail}") from None
    if not isinstance(payload, dict):
        raise CheckpointError(f"{path}: expected a dict, found {type(payload).__name__}")
    missing = REQUIRED_KEYS - payload.keys()
    if missing:
        raise CheckpointError(f"{path}: checkpoint lacks {sorted(missing)}")
    if payload["format_version"] != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format {payload['format_version']}, this code reads {FORMAT_VERSION}"
        )
    return payload


def load_model_state(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load weights strictly: any missing or unexpected key is a CheckpointError naming it."""
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as err:  # a tensor of the wrong shape
        raise CheckpointError(f"checkpoint does not match {type(model).__name__}: {err}") from None
    problems = []
    if result.missing_keys:
        problems.append(f"missing keys {result.missing_keys}")
    if result.unexpected_keys:
        problems.append(f"unexpected keys {result.unexpected_keys}")
    if problems:
        raise CheckpointError(f"checkpoint does not match {type(model).__name__}: " + "; ".join(problems))
