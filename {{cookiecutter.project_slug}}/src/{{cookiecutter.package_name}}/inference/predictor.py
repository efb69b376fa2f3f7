"""Serving a checkpoint: raw rows in, label and confidence out, bad input refused."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..data import Preprocessor, request_schema, validate
from ..models import build_model
from ..training.checkpoint import load_checkpoint, load_model_state


@dataclass(frozen=True)
class Prediction:
    label: str
    confidence: float
    probabilities: dict[str, float]


class Predictor:
    """A trained model with the preprocessing it was trained with.

    Input is validated against the request schema and transformed with the *fitted*
    preprocessing stored in the checkpoint, so serving sees exactly what training saw.
    """

    def __init__(self, model: nn.Module, preprocessor: Preprocessor, device: str | torch.device = "cpu") -> None:
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.preprocessor = preprocessor

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str | torch.device = "cpu") -> Predictor:
        checkpoint = load_checkpoint(path)
        preprocessor = Preprocessor.from_state_dict(checkpoint["preprocessor"])
        model = build_model(
            checkpoint["model_name"],
            preprocessor.num_features,
            len(preprocessor.classes),
            **checkpoint["model_options"],
        )
        load_model_state(model, checkpoint["model_state"])
        return cls(model, preprocessor, device)

    @property
    def classes(self) -> list[str]:
        return self.preprocessor.classes

    def features(self, frame: pd.DataFrame) -> np.ndarray:
        """Validate raw rows and turn them into model inputs; ValueError on bad input."""
        if not isinstance(frame, pd.DataFrame):
            raise ValueError(f"expected a pandas DataFrame, got {type(frame).__name__}")
        checked = validate(frame, request_schema(), source="prediction input")
        return self.preprocessor.transform(checked)

    @torch.no_grad()
    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """Class probabilities, shape (rows, classes), each row summing to one."""
        features = torch.as_tensor(self.features(frame), device=self.device)
        return torch.softmax(self.model(features), dim=1).cpu().numpy()

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        """One row per input row: ``label``, ``confidence`` and a probability per class."""
        probabilities = self.predict_proba(frame)
        result = pd.DataFrame(
            {
                "label": self.preprocessor.decode_labels(probabilities.argmax(axis=1)),
                "confidence": probabilities.max(axis=1).astype(float),
            },
            index=frame.index,
        )
        for i, name in enumerate(self.classes):
            result[f"probability_{name}"] = probabilities[:, i].astype(float)
        return result

    def predict_record(self, record: Mapping[str, Any]) -> Prediction:
        """Predict for one record given as a mapping of column name to value."""
        if not isinstance(record, Mapping) or not record:
            raise ValueError("a record must be a non-empty mapping of column name to value")
        probabilities = self.predict_proba(pd.DataFrame([dict(record)]))[0]
        best = int(probabilities.argmax())
        return Prediction(
            label=self.classes[best],
            confidence=float(probabilities[best]),
            probabilities={name: float(p) for name, p in zip(self.classes, probabilities, strict=True)},
        )

    def score(self, frame: pd.DataFrame) -> dict[str, float]:
        """Accuracy on a labelled table."""
        target = self.preprocessor.target
        if target not in frame.columns:
            raise ValueError(f"labelled input needs a '{target}' column")
        labels = self.preprocessor.encode_labels(frame[target])
        predicted = self.predict_proba(frame).argmax(axis=1)
        return {"accuracy": float((predicted == labels).mean()), "rows": len(frame)}
