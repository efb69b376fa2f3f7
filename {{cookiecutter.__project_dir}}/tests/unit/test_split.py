"""The train/validation/test split: deterministic per seed, disjoint, complete, stratified."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from {{ cookiecutter.package_name }}.task import Examples
from {{ cookiecutter.package_name }}.training import Split, split_examples, stratified_split

VAL, TEST = 0.15, 0.15
PARTS = ("train", "val", "test")


def assert_partition(split: Split, rows: int) -> None:
    """Every row in exactly one part."""
    seen = np.concatenate([getattr(split, part) for part in PARTS])
    counts = Counter(seen.tolist())
    repeated = sorted(row for row, n in counts.items() if n > 1)
    assert not repeated, f"rows in more than one part: {repeated[:10]}"
    missing = sorted(set(range(rows)) - set(counts))
    assert not missing, f"rows in no part: {missing[:10]}"
    assert len(seen) == rows, f"{len(seen)} row positions for {rows} rows"


def test_same_seed_gives_the_same_split(embedded_examples):
    first = stratified_split(embedded_examples.labels, VAL, TEST, seed=3)
    second = stratified_split(embedded_examples.labels, VAL, TEST, seed=3)
    for part in PARTS:
        assert np.array_equal(getattr(first, part), getattr(second, part)), f"{part} differs between two calls"


def test_another_seed_gives_another_split(embedded_examples):
    first = stratified_split(embedded_examples.labels, VAL, TEST, seed=0)
    second = stratified_split(embedded_examples.labels, VAL, TEST, seed=1)
    assert not np.array_equal(first.test, second.test), "seeds 0 and 1 give the same test rows: the seed is ignored"


def test_split_does_not_depend_on_the_global_random_state(embedded_examples):
    np.random.seed(123)  # noqa: NPY002  (the legacy global generator is the one to rule out)
    first = stratified_split(embedded_examples.labels, VAL, TEST, seed=0)
    np.random.seed(456)  # noqa: NPY002
    second = stratified_split(embedded_examples.labels, VAL, TEST, seed=0)
    assert np.array_equal(first.train, second.train), "the split changed with numpy's global seed"


def test_parts_are_disjoint_and_cover_every_row(embedded_examples, split):
    assert_partition(split, len(embedded_examples))


def test_part_sizes_follow_the_fractions(embedded_examples):
    split = stratified_split(embedded_examples.labels, VAL, TEST, seed=0)
    rows = len(embedded_examples)
    for part, fraction in (("val", VAL), ("test", TEST), ("train", 1 - VAL - TEST)):
        share = len(getattr(split, part)) / rows
        assert share == pytest.approx(fraction, abs=0.02), f"{part} holds {share:.3f} of the rows, asked {fraction}"


@pytest.mark.parametrize("seed", range(5))
def test_every_part_keeps_the_class_proportions(embedded_examples, seed):
    labels = embedded_examples.labels
    split = stratified_split(labels, VAL, TEST, seed)
    overall = Counter(labels.tolist())
    for part in PARTS:
        rows = getattr(split, part)
        counts = Counter(labels[rows].tolist())
        for label, total in overall.items():
            expected = total / len(labels) * len(rows)
            # Rounding each class's share can move a part by about a row per class, never more.
            assert abs(counts[label] - expected) <= 1.5, (
                f"seed {seed}: {part} has {counts[label]} '{label}' rows, proportional share is {expected:.1f}"
            )


def test_positions_are_sorted_integer_arrays(split):
    for part in PARTS:
        rows = getattr(split, part)
        assert rows.dtype.kind == "i", f"{part} positions have dtype {rows.dtype}"
        assert np.all(np.diff(rows) > 0), f"{part} positions are not sorted"


@pytest.mark.parametrize(("val", "test"), [(0.0, 0.2), (0.2, 0.0), (0.5, 0.5), (1.2, 0.1), (-0.1, 0.2)], ids=str)
def test_impossible_fractions_are_refused(val, test):
    with pytest.raises(ValueError, match="must be in"):
        stratified_split(["a", "b", "c"] * 5, val, test, seed=0)


def test_empty_labels_are_refused():
    with pytest.raises(ValueError, match="non-empty"):
        stratified_split([], VAL, TEST, seed=0)


@st.composite
def label_sets(draw):
    """Class sizes from 3 rows up, in a shuffled order, with fractions and a seed."""
    sizes = draw(st.lists(st.integers(3, 60), min_size=1, max_size=4))
    labels = [f"class{i}" for i, size in enumerate(sizes) for _ in range(size)]
    labels = draw(st.permutations(labels))
    val = draw(st.floats(0.05, 0.4))
    test = draw(st.floats(0.05, 0.4))
    return np.array(labels), val, test, draw(st.integers(0, 2**32 - 1))


@settings(max_examples=40, deadline=None)
@given(label_sets())
def test_any_split_is_a_deterministic_partition_with_every_class_in_every_part(case):
    labels, val, test, seed = case
    split = stratified_split(labels, val, test, seed)
    assert_partition(split, len(labels))
    again = stratified_split(labels, val, test, seed)
    assert all(np.array_equal(getattr(split, p), getattr(again, p)) for p in PARTS), "not deterministic"
    for label, size in Counter(labels.tolist()).items():
        for part in PARTS:
            present = int(np.sum(labels[getattr(split, part)] == label))
            assert present >= 1, f"class '{label}' ({size} rows) has no row in {part} (val={val}, test={test})"


def fixed_test_case(rows: int = 90) -> tuple[np.ndarray, np.ndarray]:
    """Three classes; every fifth row marked as the data's own test split."""
    labels = np.array(["a", "b", "c"] * (rows // 3), dtype=object)
    return labels, np.arange(rows) % 5 == 0


def test_a_test_split_named_by_the_data_is_kept_exactly():
    labels, test = fixed_test_case()
    split = stratified_split(labels, VAL, TEST, seed=0, test=test)
    assert_partition(split, len(labels))
    assert np.array_equal(split.test, np.flatnonzero(test)), "the test rows are not the ones the data names"
    others, classes = int((~test).sum()), 3
    assert abs(len(split.val) - others * VAL) <= classes / 2, (  # each class rounds its own share
        f"{len(split.val)} validation rows of {others}, wanted {VAL:.2f} of them"
    )
    for label in "abc":
        assert np.sum(labels[split.val] == label) >= 1, f"class {label} missing from validation"


def test_split_examples_keeps_the_test_split_of_the_examples(embedded_examples):
    labels, test = fixed_test_case()
    examples = Examples(embedded_examples.read().iloc[: len(labels)], labels, test)
    split = split_examples(examples, VAL, TEST, seed=0)
    assert np.array_equal(split.test, np.flatnonzero(test)), "split_examples drew its own test rows"
    if embedded_examples.test is not None:
        embedded = split_examples(embedded_examples, VAL, TEST, seed=0)
        assert np.array_equal(embedded.test, np.flatnonzero(embedded_examples.test)), (
            "the embedded dataset's own test split is not the run's test split"
        )


def test_examples_subset_keeps_the_test_marks():
    labels, test = fixed_test_case(9)
    examples = Examples(pd.Series(range(9)), labels, test)
    assert np.array_equal(examples.subset([5, 0, 1]).test, test[[5, 0, 1]])


@pytest.mark.parametrize("marks", ["all", "none", "short"])
def test_an_impossible_test_split_is_refused(marks):
    labels, _ = fixed_test_case(9)
    test = {"all": np.ones(9, bool), "none": np.zeros(9, bool), "short": np.ones(4, bool)}[marks]
    with pytest.raises(ValueError, match="test"):
        stratified_split(labels, VAL, TEST, seed=0, test=test)
