"""Serving a checkpoint: raw inputs in, label and confidence out, bad input refused."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..checkpoint import damaged_checkpoint, load_model_state, read_checkpoint
from ..config import PREDICT_BATCH
from ..data import Preprocessor
from ..models import build_for, move_inputs
from ..task import Examples, Items, batches_of


@dataclass(frozen=True)
class Prediction:
    label: str
    confidence: float
    probabilities: dict[str, float]


class Predictor:
    """A trained model with the preprocessing it was trained with.

    Raw inputs are validated and transformed by the *fitted* preprocessing stored in the
    checkpoint (``Preprocessor.prepare``), so serving sees exactly what training saw.
    """

    def __init__(
        self,
        model: nn.Module,
        preprocessor: Preprocessor,
        device: str | torch.device = "cpu",
        source: dict[str, Any] | None = None,
    ) -> None:
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.preprocessor = preprocessor
        # Where the model came from (``from_checkpoint``): its registered name, options, epoch and fingerprint.
        self.source = dict(source or {})

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str | torch.device = "cpu") -> Predictor:
        checkpoint, sha256 = read_checkpoint(path)
        with damaged_checkpoint(path):
            preprocessor = Preprocessor.from_state_dict(checkpoint.preprocessor)
            model = build_for(checkpoint.model_name, preprocessor, **checkpoint.model_options)
            load_model_state(model, checkpoint.model_state)
        source = {
            "model": checkpoint.model_name,
            "model_options": checkpoint.model_options,
            "epoch": checkpoint.served_epoch,
            "sha256": sha256,
        }
        return cls(model, preprocessor, device, source)

    @property
    def classes(self) -> list[str]:
        return self.preprocessor.classes

    def features(self, inputs: Any) -> torch.Tensor:
        """Validate raw inputs and turn them into one batch of model inputs; ValueError on bad input."""
        return self.preprocessor.prepare(inputs)

    @torch.no_grad()
    def predict_proba(self, inputs: Any) -> np.ndarray:
        """Class probabilities, shape (items, classes), each row summing to one."""
        batch = move_inputs(self.model, self.features(inputs), self.device)
        return torch.softmax(self.model(batch).float(), dim=1).cpu().numpy()

    def predict(self, inputs: Any) -> pd.DataFrame:
        """One row per input: ``label``, ``confidence`` and a probability per class, on the inputs' index."""
        probabilities = self.predict_proba(inputs)
        result = pd.DataFrame(
            {
                "label": self.preprocessor.decode_labels(probabilities.argmax(axis=1)),
                "confidence": probabilities.max(axis=1).astype(float),
            },
            index=getattr(inputs, "index", None),
        )
        for i, name in enumerate(self.classes):
            result[f"probability_{name}"] = probabilities[:, i].astype(float)
        return result

    def predict_batches(self, items: Items, batch_size: int = PREDICT_BATCH) -> Iterator[pd.DataFrame]:
        """``predict`` over ``items`` (by reference: ``read_inputs``), ``batch_size`` items at a time,
        in order: memory holds one batch, and each row of predictions keeps its input's id."""
        for inputs in batches_of(items, batch_size):
            yield self.predict(inputs)

    def predict_one(self, item: Any) -> Prediction:
        """Predict for one raw item (a record, an image, a text)."""
        probabilities = self.predict_proba(self.preprocessor.single(item))[0]
        best = int(probabilities.argmax())
        return Prediction(
            label=self.classes[best],
            confidence=float(probabilities[best]),
            probabilities={name: float(p) for name, p in zip(self.classes, probabilities, strict=True)},
        )

    def score(self, examples: Examples, batch_size: int = PREDICT_BATCH) -> dict[str, float]:
        """Accuracy on labelled examples, read and scored ``batch_size`` at a time."""
        if len(examples) == 0:
            raise ValueError("cannot score an empty set of examples")
        correct = 0
        for inputs, labels in examples.batches(batch_size):
            predicted = self.predict_proba(inputs).argmax(axis=1)
            correct += int((predicted == self.preprocessor.encode_labels(labels)).sum())
        return {"accuracy": correct / len(examples), "rows": len(examples)}
