"""The seam between the task-generic core and the task part of the project.

The core (the training loop, checkpoints, distributed training, the CLI, the Predictor and
the test battery) never looks inside the data. It reaches the task only through the names
that ``data/__init__.py`` exports, and those are the only names to keep when you replace
the data with your own:

``load_examples(path=None) -> Examples``
    Read and validate labelled raw data (the embedded dataset when ``path`` is None).
``read_inputs(path) -> inputs``
    Read unlabelled raw inputs for ``predict``: a pandas object, one item per row. An index
    with a name (such as ``file``) is written beside the predictions.
``REQUEST_FORMAT`` and ``request_inputs(items) -> inputs``
    How ``serve`` takes inputs over HTTP: ``"json"`` (each item a JSON value, such as a record
    of a table or a text) or ``"files"`` (each item an ``Upload``, such as an image file); and
    the items of one request as inputs, the pandas object ``read_inputs`` gives for a file. A
    ValueError names the item and what is wrong; the Predictor then checks the inputs as it
    checks those of ``predict``.
``Preprocessor``
    The fitted preprocessing state (scaler, pixel statistics, tokenizer) that travels inside
    the checkpoint, as the ``Preprocessor`` protocol below describes.
``TRAINING_DEFAULTS``
    The defaults of ``TrainConfig`` that suit this task (model, epochs, learning rate, ...).

Models are built with ``num_classes`` and the keyword sizes of ``Preprocessor.model_inputs()``
(``in_features`` for a table, ``in_channels``/``height``/``width`` for images,
``vocab_size``/``max_length``/``pad_id`` for texts), so any model
registered in ``models/`` trains, serves and gets the whole test battery.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

Batch = tuple[torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class Examples:
    """Labelled raw data: ``inputs`` (a pandas object, one item per row) and a class name per item.

    ``test`` marks the rows of a test split that the data itself defines (a benchmark's standard
    test set), one bool per item; None when the data has none and the split draws test rows too.
    """

    inputs: pd.DataFrame | pd.Series
    labels: np.ndarray
    test: np.ndarray | None = None

    def __post_init__(self) -> None:
        if len(self.inputs) != len(self.labels):
            raise ValueError(f"{len(self.inputs)} inputs but {len(self.labels)} labels")
        if self.test is not None and (self.test.dtype != bool or self.test.shape != self.labels.shape):
            raise ValueError(f"test must hold one bool per item, got {self.test.dtype} of shape {self.test.shape}")

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, rows: Sequence[int] | np.ndarray) -> Examples:
        """The examples at positions ``rows``, in that order."""
        rows = np.asarray(rows, dtype=np.int64)
        return Examples(self.inputs.iloc[rows], self.labels[rows], None if self.test is None else self.test[rows])


@dataclass(frozen=True)
class Upload:
    """A file sent to ``serve`` in a multipart request: the name the client gave it, and its bytes."""

    name: str
    content: bytes


def label_ids(classes: Sequence[str], labels: Any) -> np.ndarray:
    """Class names to integer ids (int64), in the order of ``classes``; ValueError naming unknown ones."""
    index = {name: i for i, name in enumerate(classes)}
    names = [str(label) for label in np.asarray(labels, dtype=object).reshape(-1)]
    unknown = sorted(set(names) - set(index))
    if unknown:
        raise ValueError(f"unknown label(s) {unknown}; known: {list(classes)}")
    return np.array([index[name] for name in names], dtype=np.int64)


def label_names(classes: Sequence[str], ids: Any) -> list[str]:
    """Integer ids back to class names."""
    return [classes[int(i)] for i in np.asarray(ids).reshape(-1)]


class Preprocessor(Protocol):
    """What every task's preprocessing offers the core.

    ``fit`` sees the training split only; ``state_dict`` holds plain Python values and
    tensors, so it is saved in the checkpoint and read back with ``weights_only=True``;
    ``from_state_dict`` restores it for serving, never refitting anything.
    """

    def fit(self, examples: Examples) -> Preprocessor: ...

    def state_dict(self) -> dict[str, Any]: ...

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> Preprocessor: ...

    @property
    def classes(self) -> list[str]: ...

    def model_inputs(self) -> dict[str, int]:
        """The input sizes a model is built with, besides ``num_classes``."""
        ...

    def prepare(self, inputs: Any) -> torch.Tensor:
        """Validate raw inputs and turn them into one batch of model inputs; ValueError naming what is wrong."""
        ...

    def single(self, item: Any) -> Any:
        """One raw item (a record, an image, a text) as inputs of one row."""
        ...

    def dataset(self, examples: Examples, *, train: bool, seed: int = 0) -> Dataset:
        """(model input, label id) pairs; random augmentation only when ``train``.

        Augmentation is drawn from ``seed``, the epoch (``dataset.set_epoch``, where the task
        augments) and the item's position, so it is the same in one process or several.
        """
        ...

    def collate(self, items: list[tuple[torch.Tensor, torch.Tensor]]) -> Batch:
        """Stack dataset items into one (inputs, labels) batch."""
        ...

    def encode_labels(self, labels: Any) -> np.ndarray: ...

    def decode_labels(self, ids: Any) -> list[str]: ...
