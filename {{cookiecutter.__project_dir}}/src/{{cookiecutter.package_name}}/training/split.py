"""A deterministic, stratified train/validation/test split."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..task import Examples


@dataclass(frozen=True)
class Split:
    """Row positions of each part; disjoint and, together, every row once."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def split_examples(examples: Examples, val_fraction: float, test_fraction: float, seed: int) -> Split:
    """The split of a run: ``stratified_split`` of the labels, keeping a test split the data defines."""
    return stratified_split(examples.labels, val_fraction, test_fraction, seed, test=examples.test)


def stratified_split(labels, val_fraction: float, test_fraction: float, seed: int, *, test=None) -> Split:
    """Split row positions so that each part keeps the class proportions of ``labels``.

    The same labels and seed always give the same split. Every class with at least three
    rows is present in every part. ``test`` (one bool per row) fixes the test rows instead:
    then ``test_fraction`` is not used and the validation rows are ``val_fraction`` of the others.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) == 0:
        raise ValueError("labels must be a non-empty one-dimensional sequence")
    if not (0 < val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ValueError(
            f"val_fraction={val_fraction} and test_fraction={test_fraction} must be in (0, 1) and sum to less than 1"
        )
    fixed = None if test is None else np.asarray(test, dtype=bool)
    if fixed is not None:
        if fixed.shape != labels.shape:
            raise ValueError(f"test marks {fixed.shape[0]} rows but there are {len(labels)} labels")
        if fixed.all() or not fixed.any():
            raise ValueError("the data's own test split must hold some rows but not all of them")
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    for label in sorted(set(labels.tolist()), key=str):
        rows = rng.permutation(np.flatnonzero(labels == label))
        if fixed is None:
            n_test = _share(len(rows), test_fraction, keep=2)  # one row each for val and train
            n_val = _share(len(rows) - n_test, val_fraction / (1 - test_fraction), keep=1)  # one for train
            parts["test"].append(rows[:n_test])
            rows = rows[n_test:]
        else:
            parts["test"].append(rows[fixed[rows]])
            rows = rows[~fixed[rows]]
            n_val = _share(len(rows), val_fraction, keep=1)
        parts["val"].append(rows[:n_val])
        parts["train"].append(rows[n_val:])
    return Split(**{name: np.sort(np.concatenate(chunks)) for name, chunks in parts.items()})


def _share(n: int, fraction: float, keep: int) -> int:
    """Rows of ``n`` that go to a part of ``fraction``: at least one while ``keep`` stay behind."""
    return min(max(round(n * fraction), 1), max(n - keep, 0))
