"""The seam between the task-generic core and the task part of the project.

The core (the training loop, checkpoints, distributed training, the CLI, the Predictor and
the test battery) never looks inside the data. It reaches the task only through the names
that ``data/__init__.py`` exports, and those are the only names to keep when you replace
the data with your own:

``load_examples(path=None) -> Examples``
    Labelled raw data (the embedded dataset when ``path`` is None), described by reference:
    the items stay on disk and are read when a batch asks for them (``Items``), so data of
    any size trains in the memory of a few batches and an index. Reading is one streamed
    pass that validates what it can without decoding items (a table's rows against its
    schema, the texts, the listing of an image folder) and names the file, row or column of
    the first problem, wherever in the file it is.
``read_inputs(path) -> Items``
    Unlabelled raw inputs for ``predict``, by reference as well: ``predict`` reads and scores
    them a batch at a time and writes each prediction beside its input's id.
``REQUEST_FORMAT`` and ``request_inputs(items) -> inputs``
    How ``serve`` takes inputs over HTTP: ``"json"`` (each item a JSON value, such as a record
    of a table or a text) or ``"files"`` (each item an ``Upload``, such as an image file); and
    the items of one request as inputs (what ``Items.read`` gives for a file). A ValueError
    names the item and what is wrong; the Predictor then checks the inputs as it checks those
    of ``predict``.
``Preprocessor``
    The fitted preprocessing state (scaler, pixel statistics, tokenizer) that travels inside
    the checkpoint, as ``PreprocessorProtocol`` below describes. ``Preprocessor(**options)``
    takes ``TrainConfig.preprocessing_options()`` (``input_size`` where the task has one).
``TRAINING_DEFAULTS``
    The defaults of ``TrainConfig`` that suit this task (model, epochs, learning rate, worker
    processes, ...), and ``predict_batch_size``: the inputs ``predict`` reads and scores at a time.
``INPUT_SIZE``
    ``(default, help)`` of the ``input_size`` option where the task lets the user choose the
    size of a model input (the side images are resized to); None where the data fixes it.
``embedded_dataset_path() -> Path``
    The dataset ``load_examples()`` reads without a path: a run records its fingerprint.

``seam.py`` holds the data package to these names and types: the type checker of ``nox -s lint``
(mypy) fails, naming the name, where ``data/`` drifts from them.

Models are built with ``num_classes`` and the keyword sizes of ``Preprocessor.model_inputs()``
(``in_features`` for a table, ``in_channels``/``height``/``width`` for images,
``vocab_size``/``max_length``/``pad_id`` for texts), so any model
registered in ``models/`` trains, serves and gets the whole test battery.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

Batch = tuple[torch.Tensor, torch.Tensor]
# Items read at a time where data is streamed in order (fitting, evaluating, predicting, writing).
READ_BATCH = 4096


class Items(Protocol):
    """Raw items by reference (rows of a file on disk, image files), read only when asked for."""

    def __len__(self) -> int: ...

    def read(self, rows: np.ndarray) -> Any:
        """The raw items at positions ``rows`` (int64), in that order: the pandas object
        ``Preprocessor.prepare`` takes, one item per row, indexed by each item's id (the row or
        line number a person counts in the file, or the file's name)."""
        ...


class InMemory:
    """Items already in memory: a pandas object, one item per row (a request, a test's data)."""

    def __init__(self, inputs: pd.DataFrame | pd.Series) -> None:
        self.inputs = inputs

    def __len__(self) -> int:
        return len(self.inputs)

    def read(self, rows: np.ndarray) -> pd.DataFrame | pd.Series:
        return self.inputs.iloc[np.asarray(rows, dtype=np.int64)]


class Rows:
    """The items of ``items`` at ``positions``, in that order: a subset that reads nothing until asked."""

    def __init__(self, items: Items, positions: np.ndarray) -> None:
        if isinstance(items, Rows):  # a subset of a subset: one level of positions
            positions = items.positions[positions]
            items = items.items
        self.items: Items = items
        self.positions: np.ndarray = np.asarray(positions, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.positions)

    def read(self, rows: np.ndarray) -> Any:
        return self.items.read(self.positions[np.asarray(rows, dtype=np.int64)])


def batches_of(items: Items, size: int | None = None) -> Iterator[Any]:
    """Every item of ``items`` in order, read ``size`` (default ``READ_BATCH``) at a time: what a
    streamed pass holds in memory."""
    size = size or READ_BATCH
    if size < 1:
        raise ValueError(f"batch size must be at least 1, got {size}")
    for start in range(0, len(items), size):
        yield items.read(np.arange(start, min(start + size, len(items)), dtype=np.int64))


def read_all(items: Items) -> Any:
    """Every item of ``items`` read at once: for small inputs (a test, a look in a notebook).
    Work on data of any size reads ``batches_of`` it instead."""
    return items.read(np.arange(len(items), dtype=np.int64))


@dataclass(frozen=True)
class Examples:
    """Labelled raw data: the ``items`` (by reference, or a pandas object held in memory) and a
    class name per item.

    ``test`` marks the rows of a test split that the data itself defines (a benchmark's standard
    test set), one bool per item; None when the data has none and the split draws test rows too.
    ``labels`` and ``test`` are the index the core keeps in memory: a few bytes per item.
    """

    items: Items | pd.DataFrame | pd.Series
    labels: np.ndarray
    test: np.ndarray | None = None

    def __post_init__(self) -> None:
        if isinstance(self.items, pd.DataFrame | pd.Series):
            object.__setattr__(self, "items", InMemory(self.items))
        if len(self.items) != len(self.labels):
            raise ValueError(f"{len(self.items)} inputs but {len(self.labels)} labels")
        if self.test is not None and (self.test.dtype != bool or self.test.shape != self.labels.shape):
            raise ValueError(f"test must hold one bool per item, got {self.test.dtype} of shape {self.test.shape}")

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, rows: Sequence[int] | np.ndarray) -> Examples:
        """The examples at positions ``rows``, in that order (nothing is read)."""
        rows = np.asarray(rows, dtype=np.int64)
        test = None if self.test is None else self.test[rows]
        return Examples(Rows(self.items, rows), self.labels[rows], test)

    def read(self, rows: Sequence[int] | np.ndarray | None = None) -> Any:
        """The raw inputs at positions ``rows`` (every one when None: for small data and tests)."""
        rows = np.arange(len(self)) if rows is None else np.asarray(rows, dtype=np.int64)
        return self.items.read(rows)

    def batches(self, size: int | None = None) -> Iterator[tuple[Any, np.ndarray]]:
        """(raw inputs, labels) of every example in order, ``size`` (default ``READ_BATCH``) at a time."""
        size = size or READ_BATCH
        for start, inputs in zip(range(0, len(self), size), batches_of(self.items, size), strict=True):
            yield inputs, self.labels[start : start + size]


@dataclass(frozen=True)
class Upload:
    """A file sent to ``serve`` in a multipart request: the name the client gave it, and its bytes."""

    name: str
    content: bytes


def label_ids(classes: Sequence[str], labels: Any) -> np.ndarray:
    """Class names to integer ids (int64), in the order of ``classes``; ValueError naming unknown ones."""
    index = {name: i for i, name in enumerate(classes)}
    names = np.asarray(labels, dtype=object).reshape(-1)
    distinct, inverse = np.unique(names.astype(str), return_inverse=True)
    unknown = sorted(set(distinct.tolist()) - set(index))
    if unknown:
        raise ValueError(f"unknown label(s) {unknown}; known: {list(classes)}")
    return np.array([index[name] for name in distinct.tolist()], dtype=np.int64)[inverse.reshape(-1)]


def label_names(classes: Sequence[str], ids: Any) -> list[str]:
    """Integer ids back to class names."""
    return [classes[int(i)] for i in np.asarray(ids).reshape(-1)]


def check_state(values: Any, fields: dict[str, Any], where: str) -> dict[str, Any]:
    """``values`` if it is a dict with exactly the keys of ``fields``, each value of its type,
    else a ValueError naming every key missing, unexpected or of another type. A type of
    ``(list, item_type)`` asks for a list of such items. For ``from_state_dict``: a damaged
    state is refused when it is read, not half-used when a batch meets it."""
    if not isinstance(values, dict):
        raise ValueError(f"{where} is a {type(values).__name__}, not a dict")
    problems = []
    if missing := sorted(set(fields) - set(values)):
        problems.append(f"lacks {missing}")
    if unexpected := sorted(set(values) - set(fields), key=str):
        problems.append(f"has unexpected {unexpected}")
    for name, kind in fields.items():
        if name not in values:
            continue
        value = values[name]
        kind, item = kind if isinstance(kind, tuple) else (kind, None)
        wrong = not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool)
        if not wrong and item is not None:
            wrong = any(not isinstance(x, item) or isinstance(x, bool) for x in value)
        if wrong:
            expected = kind.__name__ + (f" of {item.__name__}" if item is not None else "")
            problems.append(f"'{name}' is {type(value).__name__} {_short(value)}, not a {expected}")
    if problems:
        raise ValueError(f"{where} " + "; ".join(problems))
    return values


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


class PreprocessorProtocol(Protocol):
    """What every task's preprocessing offers the core.

    ``fit`` sees the training split only and reads it in one bounded, streamed pass (or a
    stated, seeded sample of it); ``state_dict`` holds plain Python values and tensors, so it
    is saved in the checkpoint and read back with ``weights_only=True``; ``from_state_dict``
    restores it for serving, never refitting anything, and refuses a damaged state at once
    (a ValueError naming what is missing, unexpected or of another type: ``check_state``).
    """

    def fit(self, examples: Examples) -> PreprocessorProtocol: ...

    def state_dict(self) -> dict[str, Any]: ...

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> PreprocessorProtocol: ...

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
        """(model input, label id) pairs, each item read and transformed when a batch asks for it
        (``__getitems__``), in DataLoader worker processes where there are some: exactly what
        ``prepare`` gives for the same raw item, plus random augmentation only when ``train``.

        Augmentation is drawn from ``seed``, the epoch (``dataset.set_epoch``, where the task
        augments) and the item's position, so it is the same in one process or several.
        """
        ...

    def collate(self, items: list[tuple[torch.Tensor, torch.Tensor]]) -> Batch:
        """Stack dataset items into one (inputs, labels) batch."""
        ...

    def encode_labels(self, labels: Any) -> np.ndarray: ...

    def decode_labels(self, ids: Any) -> list[str]: ...
