"""Preprocessing fitted on the training split only, saved with the model, reused at inference.

The fitted state is plain Python (numbers, strings, lists), so it travels inside a
checkpoint loaded with ``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .schema import CATEGORICAL_FEATURES, NUMERIC_FEATURES, TARGET


class Preprocessor:
    """Impute and standardise numeric columns, one-hot encode categorical ones, encode labels.

    A missing numeric value becomes the training median; a missing category becomes all
    zeros; a category never seen in training is an error, never a silent zero vector.
    """

    def __init__(
        self,
        numeric: tuple[str, ...] = NUMERIC_FEATURES,
        categorical: tuple[str, ...] = CATEGORICAL_FEATURES,
        target: str = TARGET,
    ) -> None:
        self.numeric = tuple(numeric)
        self.categorical = tuple(categorical)
        self.target = target
        self.state: dict[str, Any] | None = None

    # -- fitting -------------------------------------------------------------------------
    def fit(self, frame: pd.DataFrame) -> Preprocessor:
        """Learn medians, means, standard deviations, categories and classes from ``frame``."""
        if len(frame) == 0:
            raise ValueError("cannot fit preprocessing on an empty table")
        numeric = {}
        for column in self.numeric:
            values = frame[column].astype("float64")
            median = float(values.median()) if values.notna().any() else 0.0
            filled = values.fillna(median)
            mean, std = float(filled.mean()), float(filled.std(ddof=0))
            # A spread within float rounding of the mean is a constant column; dividing by it would blow
            # rounding noise up to unit variance.
            constant = not np.isfinite(std) or std <= max(1e-12, 1e-9 * abs(mean))
            numeric[column] = {"median": median, "mean": mean, "std": 1.0 if constant else std}
        categorical = {column: sorted(str(v) for v in frame[column].dropna().unique()) for column in self.categorical}
        classes = sorted(str(v) for v in frame[self.target].dropna().unique())
        self.state = {"numeric": numeric, "categorical": categorical, "classes": classes}
        return self

    # -- state ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "numeric_columns": list(self.numeric),
            "categorical_columns": list(self.categorical),
            "target": self.target,
            "fitted": self._fitted(),
        }

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> Preprocessor:
        pre = cls(tuple(state["numeric_columns"]), tuple(state["categorical_columns"]), state["target"])
        pre.state = state["fitted"]
        return pre

    def _fitted(self) -> dict[str, Any]:
        if self.state is None:
            raise RuntimeError("Preprocessor is not fitted: call fit() on the training split first")
        return self.state

    # -- transforming --------------------------------------------------------------------
    @property
    def classes(self) -> list[str]:
        return list(self._fitted()["classes"])

    @property
    def feature_names(self) -> list[str]:
        state = self._fitted()
        names = list(self.numeric)
        for column in self.categorical:
            names += [f"{column}={value}" for value in state["categorical"][column]]
        return names

    @property
    def num_features(self) -> int:
        return len(self.feature_names)

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """Features as a float32 array of shape (rows, num_features)."""
        state = self._fitted()
        missing = [c for c in self.numeric + self.categorical if c not in frame.columns]
        if missing:
            raise ValueError(f"missing column(s) {missing}")
        blocks = []
        for column in self.numeric:
            stats = state["numeric"][column]
            values = pd.to_numeric(frame[column], errors="raise").astype("float64")
            values = values.fillna(stats["median"]).to_numpy()
            blocks.append(((values - stats["mean"]) / stats["std"])[:, None])
        for column in self.categorical:
            known = state["categorical"][column]
            present = frame[column].notna()
            values = frame[column].astype(object).where(present, None)
            unseen = sorted({str(v) for v in values[present]} - set(known))
            if unseen:
                raise ValueError(f"column '{column}' has unseen categories {unseen}; known: {known}")
            blocks.append(np.stack([(values == k).to_numpy(dtype=bool) for k in known], axis=1))
        if not blocks:
            return np.zeros((len(frame), 0), dtype=np.float32)
        return np.concatenate(blocks, axis=1).astype(np.float32)

    def encode_labels(self, labels) -> np.ndarray:
        """Class names to integer ids (int64), in the order of ``classes``."""
        index = {name: i for i, name in enumerate(self.classes)}
        labels = pd.Series(labels).astype(object)
        unknown = sorted({str(v) for v in labels} - set(index))
        if unknown:
            raise ValueError(f"unknown label(s) {unknown}; known: {self.classes}")
        return labels.map(index).to_numpy(dtype=np.int64)

    def decode_labels(self, ids) -> list[str]:
        classes = self.classes
        return [classes[int(i)] for i in np.asarray(ids).reshape(-1)]
