"""``export``: the trained model for other runtimes, each file checked against the eager model first.

Into ``export/`` beside the checkpoint (or ``--output-dir``), three files:

``model.pt2``
    a ``torch.export`` program of the model (``torch.export.load(path).module()``), any batch size;
``model.onnx``
    the same model for ONNX Runtime and other ONNX runtimes, from torch's dynamo-based exporter
    (onnxscript), any batch size;
``export.json``
    what a runtime needs beside them: the checkpoint's sha256, epoch and options, the classes in
    the order of the model's outputs, the input's name and type, the fitted preprocessing
    (``Preprocessor.state_dict()``, plain JSON) and the parity measured before writing.

The model is exported in eval mode, on the CPU, in float32, whatever precision it trained in.
Before anything is written where asked, each file is read back and its probabilities for the
first ``PARITY_ROWS`` examples of the checkpoint's test split (or of ``--data``), as one batch
and for the first example alone, are compared with the eager model's: a difference above
``TOLERANCE`` refuses the export, naming the file and how many labels it changes, and nothing is
left behind. A model an exporter cannot take is refused with the exporter's own reason.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .files import current_umask
from .inference import Predictor
from .inference.exported import (
    EXPORT_FILE,
    ONNX_FILE,
    PT2_FILE,
    ExportedPredictor,
    export_folder,
    require_export_extra,
)
from .training.runs import examples_to_score

# Examples the parity check compares on: the first of the checkpoint's test split (or of --data).
PARITY_ROWS = 256
# The largest difference in a class probability accepted between a file and the eager model: both
# compute in float32, and fused or reordered operations round differently (about 1e-7 here).
TOLERANCE = 1e-4
# torch's exporters log and warn about themselves (optional operator sets, their own deprecations).
EXPORTER_LOGGERS = ("torch.onnx", "torch._export", "torch.export", "onnxscript")


@dataclass(frozen=True)
class ExportReport:
    folder: Path
    rows: int  # examples the parity check compared on
    differences: dict[str, float]  # per file: the largest difference in a probability from the eager model's


def export_checkpoint(
    checkpoint: str | Path, output_dir: str | Path | None = None, data: str | None = None, *, overwrite: bool = False
) -> ExportReport:
    """Write ``model.pt2``, ``model.onnx`` and ``export.json`` for ``checkpoint``; see the module's text."""
    require_export_extra("export")
    folder = Path(output_dir) if output_dir is not None else export_folder(checkpoint)
    if folder.exists() and not overwrite:
        raise FileExistsError(f"{folder}: already exists (--overwrite replaces it)")
    predictor = Predictor.from_checkpoint(checkpoint)
    model = predictor.model.float().eval()
    inputs, _ = next(examples_to_score(checkpoint, data)[0].batches(PARITY_ROWS))
    features = predictor.features(inputs)
    if len(features) < 2:
        raise ValueError("export needs at least 2 examples to check the model against (one alone, and a batch)")
    features = features.float() if features.is_floating_point() else features
    with torch.no_grad():
        eager = torch.softmax(model(features), dim=1).numpy()
    name = str(predictor.source["model"])
    with _quiet_exporters():
        program = _exported_program(model, features, name)
        onnx_program = _onnx_program(model, features, name)

    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    staging.chmod(0o777 & ~current_umask())  # as a folder made by mkdir: mkdtemp's are private
    try:
        torch.export.save(program, staging / PT2_FILE)
        onnx_program.save(str(staging / ONNX_FILE))
        record: dict[str, Any] = {
            "checkpoint": {
                "sha256": predictor.source["sha256"],
                "epoch": predictor.source["epoch"],
                "model_options": predictor.source["model_options"],
            },
            "model": name,
            "classes": predictor.classes,
            "input": {"name": _input_name(staging / ONNX_FILE), "dtype": str(features.numpy().dtype)},
            "preprocessor": predictor.preprocessor.state_dict(),
            "parity": {"rows": len(features), "tolerance": TOLERANCE},
        }
        (staging / EXPORT_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        reloaded = torch.export.load(staging / PT2_FILE).module()
        served = ExportedPredictor(staging)  # as `--backend onnx` serves it: raw inputs, the JSON preprocessing
        runtimes: dict[str, Callable[[slice], np.ndarray]] = {
            PT2_FILE: lambda rows: torch.softmax(reloaded(features[rows]), dim=1).detach().numpy(),
            ONNX_FILE: lambda rows: served.predict_proba(inputs.iloc[rows]),
        }
        differences = {file: _parity(file, run, eager) for file, run in runtimes.items()}
        record["parity"]["differences"] = differences
        (staging / EXPORT_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        _replace(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return ExportReport(folder, len(features), differences)


def _exported_program(model: nn.Module, features: torch.Tensor, name: str) -> torch.export.ExportedProgram:
    try:
        return torch.export.export(model, (features,), dynamic_shapes=(_dynamic_dims(features),))
    except Exception as err:  # the exporter's reason, whatever its type
        raise ValueError(f"torch.export cannot export model {name!r}: {_reason(err)}") from None


def _onnx_program(model: nn.Module, features: torch.Tensor, name: str):
    try:
        return torch.onnx.export(
            model, (features,), dynamic_shapes=(_dynamic_dims(features),), dynamo=True, verbose=False
        )
    except Exception as err:
        raise ValueError(f"the ONNX exporter cannot export model {name!r}: {_reason(err)}") from None


def _dynamic_dims(features: torch.Tensor) -> dict[int, object]:
    """The batch dimension dynamic, by name; every other one dynamic where the model lets it be
    (a text's length), fixed where the model fixes it (a table's columns)."""
    others = {dim: torch.export.Dim.AUTO for dim in range(1, features.ndim)}
    return {0: torch.export.Dim("batch"), **others}


def _input_name(onnx_file: Path) -> str:
    import onnx

    return onnx.load(str(onnx_file), load_external_data=False).graph.input[0].name


def _parity(file: str, run: Callable[[slice], np.ndarray], eager: np.ndarray) -> float:
    """The largest difference in a probability between ``file`` and the eager model, on every
    example as one batch and on the first alone; ValueError where it is above ``TOLERANCE``.

    Within it, a label can differ only where the model's two most likely classes are closer than
    twice the tolerance: a tie, which either answer breaks as well."""
    difference = 0.0
    for rows in (slice(None), slice(0, 1)):
        got, expected = run(rows), eager[rows]
        if got.shape != expected.shape:
            raise ValueError(f"{file} gives probabilities of shape {got.shape}, the model {expected.shape}")
        difference = max(difference, float(np.abs(got - expected).max()))
        if difference > TOLERANCE:
            labels = int((got.argmax(axis=1) != expected.argmax(axis=1)).sum())
            raise ValueError(
                f"{file} does not answer as the model does: probabilities differ by up to {difference:.2g} "
                f"(up to {TOLERANCE:g} accepted), {labels} of {len(got)} labels differ"
            )
    return difference


def _replace(staging: Path, folder: Path) -> None:
    """``staging`` takes the name ``folder``; an existing folder of that name goes only once it has."""
    old = None
    if folder.exists():
        old = folder.with_name(f".{folder.name}-replaced-{os.getpid()}")
        folder.rename(old)
    staging.rename(folder)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def _quiet_exporters() -> Iterator[None]:
    """Exporting prints nothing: the exporters' notes about themselves (operators of libraries not
    installed, their own deprecations) are not the user's to act on."""
    levels = {name: logging.getLogger(name).level for name in EXPORTER_LOGGERS}
    for name in EXPORTER_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
            yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _reason(err: BaseException) -> str:
    """The exporter's reason in a line; where the model's code fixed the batch size, that, said plainly."""
    fixed = re.search(r"marked batch as dynamic but your code specialized it to be a constant \((\d+)\)", str(err))
    if fixed:
        return (
            f"its code fixes the batch size to the {fixed.group(1)} examples it was traced with (a size read "
            "from the input as a Python number?), and a served model must take batches of any size"
        )
    return _first_line(err)
