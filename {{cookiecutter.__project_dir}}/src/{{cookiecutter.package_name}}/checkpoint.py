"""The checkpoint: one record of a run, one owner. ``Checkpoint`` names every entry, with its
type; ``to_payload``/``from_payload`` are the only places that spell the keys. Written
atomically, read with ``weights_only=True``, checked on load.

Training writes one every epoch, serving and evaluation read the kept weights, ``--resume``
reads the rest. This module imports neither: serving a model does not import training.
"""

from __future__ import annotations

import hashlib
import math
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import IO, Any

import torch
from torch import nn

from .files import atomic_open

FORMAT_VERSION = 1
# The first bytes of a zip archive, the format torch.save writes.
ZIP_MAGIC = b"PK\x03\x04"


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: missing, truncated, corrupt or for another model."""


@dataclass
class Checkpoint:
    """What a run leaves to serve and to resume from.

    ``model_state`` holds the weights the run kept (``TrainConfig.keep``), of epoch ``kept_epoch``
    with validation loss ``kept_val_loss``; ``epoch`` is the last epoch trained, and where its
    weights are not the kept ones ``resume_model_state`` holds them. Epochs count from 0.
    """

    model_name: str
    model_options: dict[str, Any]
    model_state: dict[str, torch.Tensor]
    preprocessor: dict[str, Any]
    config: dict[str, Any]
    epoch: int
    optimizer_state: dict[str, Any] = field(default_factory=dict)
    rng_state: dict[str, Any] = field(default_factory=dict)
    scaler_state: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, float]] = field(default_factory=list)  # training.metrics.EpochRecord.to_dict() per epoch
    kept_epoch: int | None = None
    kept_val_loss: float = math.inf
    resume_model_state: dict[str, torch.Tensor] | None = None
    format_version: int = FORMAT_VERSION

    @property
    def served_epoch(self) -> int:
        """The epoch of the weights in ``model_state``."""
        return self.epoch if self.kept_epoch is None else self.kept_epoch

    def to_payload(self) -> dict[str, Any]:
        """The dict ``torch.save`` writes: plain data and tensors only."""
        payload = {entry.name: getattr(self, entry.name) for entry in fields(self)}
        if payload["resume_model_state"] is None:
            del payload["resume_model_state"]
        if payload["kept_epoch"] is None:
            del payload["kept_epoch"]
        return payload

    @classmethod
    def from_payload(cls, payload: Any, where: str | Path = "checkpoint") -> Checkpoint:
        """Check what ``torch.load`` read and type it; CheckpointError naming ``where`` and the entry."""
        if not isinstance(payload, dict):
            raise CheckpointError(f"{where}: expected a dict, found {type(payload).__name__}")
        missing = sorted(REQUIRED_KEYS - payload.keys())
        if missing:
            raise CheckpointError(f"{where}: checkpoint lacks {missing}")
        problems = [
            f"'{key}' is {type(payload[key]).__name__}, not {' or '.join(kind.__name__ for kind in kinds)}"
            for key, kinds in ENTRY_TYPES.items()
            if key in payload and (not isinstance(payload[key], kinds) or isinstance(payload[key], bool))
        ]
        for key in ("model_state", "resume_model_state"):
            state = payload.get(key)
            problems += [
                f"'{key}' entry {name!r} is {type(value).__name__}, not a tensor"
                for name, value in (state.items() if isinstance(state, dict) else ())
                if not isinstance(name, str) or not torch.is_tensor(value)
            ]
        if problems:
            raise CheckpointError(f"{where}: damaged checkpoint: {'; '.join(problems[:3])}")
        if payload["format_version"] != FORMAT_VERSION:
            raise CheckpointError(
                f"{where}: checkpoint format {payload['format_version']}, this code reads {FORMAT_VERSION}"
            )
        known = {entry.name for entry in fields(cls)}
        return cls(**{key: value for key, value in payload.items() if key in known})


# Every entry's type, checked where the entry is there.
ENTRY_TYPES: dict[str, tuple[type, ...]] = {
    "format_version": (int,),
    "model_name": (str,),
    "model_options": (dict,),
    "model_state": (dict,),
    "optimizer_state": (dict,),
    "epoch": (int,),
    "rng_state": (dict,),
    "config": (dict,),
    "preprocessor": (dict,),
    "scaler_state": (dict,),
    "history": (list,),
    "kept_epoch": (int,),
    "kept_val_loss": (float, int),
    "resume_model_state": (dict,),
}
# The entries every checkpoint holds; the others (a run's history, what it kept) have defaults, so
# that a checkpoint written before them still loads.
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


def save_checkpoint(checkpoint: Checkpoint, path: str | Path) -> Path:
    """Write ``checkpoint`` to ``path`` through a temporary file and a rename.

    A crash while writing leaves the previous checkpoint intact and no partial file.
    """
    with atomic_open(path) as handle:
        torch.save(checkpoint.to_payload(), handle)
    return Path(path)


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read a checkpoint onto the CPU with ``weights_only=True``; CheckpointError if unusable."""
    return _read(path, fingerprint=False)[0]


def read_checkpoint(path: str | Path) -> tuple[Checkpoint, str]:
    """The checkpoint (as ``load_checkpoint`` reads it) and its fingerprint, the sha256 of its bytes.

    Both come from one open file: a checkpoint replaced meanwhile (training writes one every epoch)
    cannot give the weights of one file and the fingerprint of another.
    """
    checkpoint, digest = _read(path, fingerprint=True)
    return checkpoint, digest or ""


def _read(path: str | Path, *, fingerprint: bool) -> tuple[Checkpoint, str | None]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    digest = None
    with path.open("rb") as handle:
        if fingerprint:
            digest = _sha256(handle)
            handle.seek(0)
        head = handle.read(4)
        handle.seek(0)
        try:
            with warnings.catch_warnings():  # refused below with our own message, not warned about
                warnings.filterwarnings("ignore", message=".*TorchScript", category=UserWarning)
                warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
                payload = torch.load(handle, map_location="cpu", weights_only=True)
        except Exception as err:  # a damaged file fails deep inside torch.load in many ways (IndexError, KeyError, ...)
            raise _refusal(path, err, head) from None
    return Checkpoint.from_payload(payload, path), digest


def _sha256(handle: IO[bytes]) -> str:
    digest = hashlib.sha256()
    for block in iter(lambda: handle.read(1 << 20), b""):
        digest.update(block)
    return digest.hexdigest()


# Sentences of torch's errors that advise loading the file some other way: never passed on, since
# loading a file that holds more than weights and plain data can run the code it carries.
_TORCH_ADVICE = re.compile(
    r"weights.only|torch\.load|safe_globals|allowlist|PyTorch \d|trusted|arbitrary code|file an issue|documentation",
    re.IGNORECASE,
)


def _refusal(path: Path, err: Exception, head: bytes) -> CheckpointError:
    """Our own one-line message for a file torch.load failed on or refused, without torch's advice;
    ``head`` is the file's first bytes."""
    text = str(err)
    if "TorchScript" in text:
        return CheckpointError(f"{path}: a TorchScript archive, not a checkpoint written by `train`; it is not loaded")
    if "legacy .tar format" in text:
        return CheckpointError(f"{path}: saved in torch's legacy .tar format, which is not loaded; retrain")
    code = re.search(r"GLOBAL (\S+)", text)
    if code or re.search(r"is blocked|must be \S+ to load", text):
        found = f" ({code.group(1)})" if code else ""
        return CheckpointError(
            f"{path}: refused: the file holds Python objects{found} besides tensors and plain data, and loading "
            "them could run code, so it is never loaded; use a checkpoint written by `train`"
        )
    if head[:1] == b"\x80" and head[:4] != ZIP_MAGIC:  # a pickle stream, where torch.save writes a zip archive
        return CheckpointError(
            f"{path}: a plain pickle file, not a checkpoint written by `train` (a zip archive "
            "that torch.save writes); it is not loaded"
        )
    sentences = re.split(r"(?<=[.!?])\s+|\n+", text)
    detail = " ".join(" ".join(s for s in sentences if not _TORCH_ADVICE.search(s)).split())
    return CheckpointError(f"{path}: not a readable checkpoint (truncated or corrupt?): {detail or type(err).__name__}")


@contextmanager
def damaged_checkpoint(path: str | Path) -> Iterator[None]:
    """Within the block (restoring what a checkpoint holds), an error that a damaged entry causes
    (a missing key, an unknown model option, a value of another type) is a one-line
    CheckpointError naming the file and the entry, not a traceback from deep inside."""
    try:
        yield
    except CheckpointError as err:
        if str(path) in str(err):
            raise
        raise CheckpointError(f"{path}: {err}") from None
    except KeyError as err:
        raise CheckpointError(f"{path}: damaged checkpoint: an entry lacks {err}") from None
    except (ValueError, TypeError, AttributeError, IndexError, RuntimeError) as err:
        detail = " ".join(str(err).split()) or type(err).__name__
        raise CheckpointError(f"{path}: damaged checkpoint: {detail}") from None


def load_model_state(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load weights strictly: any missing or unexpected key, or a weight that is nan or infinite,
    is a CheckpointError naming it."""
    floating = {name: t for name, t in state.items() if torch.is_tensor(t) and t.is_floating_point()}
    not_finite = [name for name, t in floating.items() if not torch.isfinite(t).all()]
    if not_finite:
        shown = ", ".join(not_finite[:3]) + (f" and {len(not_finite) - 3} more" if len(not_finite) > 3 else "")
        raise CheckpointError(
            f"checkpoint holds weights that are nan or infinite ({shown}): the run that wrote it diverged; "
            "train again with a lower --learning-rate"
        )
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as err:  # a tensor of the wrong shape (torch lists each on a line of its own)
        detail = " ".join(str(err).split()).removeprefix(f"Error(s) in loading state_dict for {type(model).__name__}: ")
        raise CheckpointError(f"checkpoint does not match {type(model).__name__}: {detail}") from None
    problems = []
    if result.missing_keys:
        problems.append(f"missing keys {result.missing_keys}")
    if result.unexpected_keys:
        problems.append(f"unexpected keys {result.unexpected_keys}")
    if problems:
        raise CheckpointError(f"checkpoint does not match {type(model).__name__}: " + "; ".join(problems))
