"""Data of any size: fitting the preprocessing and reading a dataset go through the examples a
batch at a time, never all at once, so memory holds a batch whatever the data's size.

A preprocessing that stacks the whole training split (to fit statistics, or to transform it in
one go) passes every other test on the embedded data and runs out of memory on a user's.
"""

from __future__ import annotations

import numpy as np
import pytest

from {{ cookiecutter.package_name }} import task
from {{ cookiecutter.package_name }}.config import TrainConfig
from {{ cookiecutter.package_name }}.data import Preprocessor
from {{ cookiecutter.package_name }}.task import Examples
from {{ cookiecutter.package_name }}.training import make_loader

BATCH = 16  # what a streamed pass reads at a time in these tests (READ_BATCH)


class Recorded:
    """Items that note how many items each read asks for."""

    def __init__(self, items) -> None:
        self.items, self.reads = items, []

    def __len__(self) -> int:
        return len(self.items)

    def read(self, rows: np.ndarray):
        self.reads.append(len(rows))
        return self.items.read(rows)


@pytest.fixture
def training(embedded_examples, split, monkeypatch) -> tuple[Examples, Recorded]:
    """The training split, its reads recorded, with streamed passes reading BATCH items at a time."""
    monkeypatch.setattr(task, "READ_BATCH", BATCH)
    train = embedded_examples.subset(split.train)
    recorded = Recorded(train.items)
    return Examples(recorded, train.labels, train.test), recorded


def assert_streamed(reads: list[int], rows: int, what: str) -> None:
    assert reads, f"{what} read nothing"
    assert max(reads) <= rows // 2, (
        f"{what} read {max(reads)} of {rows} examples at once: a dataset larger than memory would not fit"
    )
    assert sum(reads) >= rows, f"{what} read {sum(reads)} examples of {rows}: not all of them"


def test_fitting_reads_the_training_split_a_batch_at_a_time(training):
    examples, recorded = training
    Preprocessor(**TrainConfig().preprocessing_options()).fit(examples)
    assert_streamed(recorded.reads, len(examples), "fitting the preprocessing")


def test_a_dataset_reads_its_examples_a_batch_at_a_time(training, preprocessor):
    examples, recorded = training
    loader = make_loader(
        preprocessor.dataset(examples, train=True), BATCH, shuffle=True, seed=0, collate_fn=preprocessor.collate
    )
    for _ in loader:
        pass
    assert_streamed(recorded.reads, len(examples), "building and reading the training dataset")
