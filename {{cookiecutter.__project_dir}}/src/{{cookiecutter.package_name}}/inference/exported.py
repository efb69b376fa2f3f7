"""Serving an exported model with ONNX Runtime: ``--backend onnx`` of ``predict``, ``evaluate`` and ``serve``.

``ExportedPredictor`` answers as ``Predictor`` does (``predict``, ``predict_batches``,
``predict_one``, ``score``) from what ``export`` wrote: ``model.onnx`` runs in ONNX Runtime, not
in torch, and the inputs go through the fitted preprocessing stored in ``export.json``. An export
made from another checkpoint than the one named is refused: its answers would be another model's.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data import Preprocessor
from ..files import fingerprint
from .predictor import Predictor

# What ``export`` writes, in a folder beside the checkpoint unless told otherwise.
EXPORT_DIR = "export"
PT2_FILE = "model.pt2"
ONNX_FILE = "model.onnx"
EXPORT_FILE = "export.json"
# What the `export` extra installs (and what those import): missing, the command says how to get them.
EXPORT_MODULES = {"onnx", "onnxscript", "onnx_ir", "onnxruntime", "ml_dtypes", "google", "flatbuffers"}


def export_folder(checkpoint: str | Path) -> Path:
    """Where ``export`` writes by default: ``export/`` beside the checkpoint."""
    return Path(checkpoint).parent / EXPORT_DIR


def require_export_extra(command: str, modules: tuple[str, ...] = ("onnx", "onnxscript", "onnxruntime")) -> None:
    """A ValueError saying how to install the `export` extra where one of ``modules`` is missing."""
    for module in modules:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as err:
            if (err.name or "").split(".")[0] not in EXPORT_MODULES:
                raise
            raise ValueError(
                f"{command} needs the export extra ({err.name} is not installed): "
                "pip install '{{ cookiecutter.project_slug }}[export]', "
                "or pip install -e '.[export]' in the project folder"
            ) from None


def softmax(logits: np.ndarray) -> np.ndarray:
    """Class probabilities from logits, row by row, in the logits' type."""
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def read_record(folder: str | Path) -> dict[str, Any]:
    """``export.json`` of an export folder; FileNotFoundError or ValueError naming the folder."""
    path = Path(folder) / EXPORT_FILE
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{folder}: no export there ({EXPORT_FILE} is missing); "
            "write one with the command `export --checkpoint CHECKPOINT` first"
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not the JSON that export writes ({err})") from None
    missing = sorted({"checkpoint", "classes", "input", "preprocessor"} - set(record))
    if missing:
        raise ValueError(f"{path}: not the JSON that export writes (no {', '.join(missing)})")
    return record


class ExportedPredictor(Predictor):
    """A model exported to ONNX, run by ONNX Runtime, with the preprocessing it was exported with."""

    def __init__(self, folder: str | Path, *, checkpoint: str | Path | None = None) -> None:
        require_export_extra("the onnx backend", ("onnxruntime",))  # serving needs no exporter
        import onnxruntime

        folder = Path(folder)
        record = read_record(folder)
        if checkpoint is not None:
            sha256 = fingerprint(checkpoint)
            if sha256 != record["checkpoint"]["sha256"]:
                raise ValueError(
                    f"{folder} was exported from another checkpoint than {checkpoint} "
                    f"(sha256 {record['checkpoint']['sha256'][:12]}, not {sha256[:12]}): export it again "
                    f"(`{{ cookiecutter.project_slug }} export --checkpoint {checkpoint} --overwrite`)"
                )
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()  # as many as torch was given (--threads)
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(
            str(folder / ONNX_FILE), options, providers=["CPUExecutionProvider"]
        )
        self.input_name = record["input"]["name"]
        self.input_type = np.dtype(record["input"]["dtype"])
        self.preprocessor = Preprocessor.from_state_dict(record["preprocessor"])
        if self.preprocessor.classes != record["classes"]:
            raise ValueError(f"{folder / EXPORT_FILE}: its classes differ from its preprocessing's")
        self.device = torch.device("cpu")
        self.source = {**record["checkpoint"], "model": record["model"], "backend": "onnx"}

    def predict_proba(self, inputs: Any) -> np.ndarray:
        features = self.features(inputs).numpy().astype(self.input_type, copy=False)
        (logits,) = self.session.run(None, {self.input_name: features})
        return softmax(logits.astype(np.float32, copy=False))
