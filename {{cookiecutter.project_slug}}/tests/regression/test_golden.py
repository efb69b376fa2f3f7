"""Golden set: a deterministically trained reference model against hand-picked held-out rows.

``golden.csv`` holds 36 labelled penguins, 12 per species, taken from the *test* split of the
reference run below (seed 0, test_fraction 0.2), so the reference model never trained on
them. ``make_golden.py`` picked them (spread over the islands each species lives on) and
they were reviewed by hand; a test below checks that they stay out of the training rows.

The baseline ``test_golden/test_predictions_match_the_stored_baseline.csv`` holds the
reference model's label and class probabilities for every golden row. A missing baseline
fails (and is written). When a change is meant to move the predictions, regenerate the
baseline and review its diff before committing it:

    pytest tests/regression --force-regen
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.config import TrainConfig
from {{ cookiecutter.package_name }}.data import load_table, stratified_split
from {{ cookiecutter.package_name }}.data.schema import TARGET
from {{ cookiecutter.package_name }}.inference import Predictor
from {{ cookiecutter.package_name }}.training import fit

pytestmark = pytest.mark.slow

GOLDEN = Path(__file__).with_name("golden.csv")
# The reference run: the default model, half the default epochs, seeded, deterministic kernels, on the CPU.
REFERENCE = TrainConfig(seed=0, test_fraction=0.2, epochs=20, deterministic=True, device="cpu")
ACCURACY_THRESHOLD = 0.94  # at most 2 of the 36 golden rows wrong
# Probabilities may move this much (other CPUs, other BLAS builds) before the test fails;
# a real change in the data, preprocessing, model or training moves them far more.
PROBABILITY_TOLERANCE = {"atol": 2e-3, "rtol": 0.0}


@pytest.fixture(scope="session")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Predictor:
    """The reference model, trained once per session and served from its checkpoint."""
    config = TrainConfig(**{**asdict(REFERENCE), "output_dir": str(tmp_path_factory.mktemp("reference"))})
    result = fit(config, show_progress=False)
    return Predictor.from_checkpoint(result.checkpoint_path)


@pytest.fixture(scope="session")
def golden() -> pd.DataFrame:
    """The golden rows, read and validated like any training table."""
    return load_table(GOLDEN)


def test_golden_set_has_twelve_rows_of_every_class(golden, reference):
    counts = golden[TARGET].value_counts().to_dict()
    assert counts == dict.fromkeys(reference.classes, 12), f"rows per class: {counts}"


def test_golden_rows_were_held_out_from_the_reference_training(golden):
    table = load_table(REFERENCE.data)
    split = stratified_split(table[TARGET], REFERENCE.val_fraction, REFERENCE.test_fraction, REFERENCE.seed)
    columns = list(golden.columns)
    in_test = golden.merge(table.iloc[split.test], on=columns, how="left", indicator=True)
    outside = in_test[in_test["_merge"] != "both"]
    assert outside.empty, f"golden rows not in the reference run's test split:\n{outside[columns]}"
    leaked = golden.merge(table.iloc[split.train], on=columns)
    assert leaked.empty, f"golden rows the reference model trained on:\n{leaked}"


def test_reference_model_reaches_the_accuracy_threshold_on_the_golden_set(reference, golden):
    predictions = reference.predict(golden)
    wrong = golden.assign(predicted=predictions["label"])[predictions["label"] != golden[TARGET]]
    accuracy = 1 - len(wrong) / len(golden)
    assert accuracy >= ACCURACY_THRESHOLD, (
        f"golden accuracy {accuracy:.3f} < {ACCURACY_THRESHOLD}; misclassified rows:\n{wrong}"
    )


def test_predictions_match_the_stored_baseline(reference, golden, dataframe_regression):
    predictions = reference.predict(golden).drop(columns="confidence")
    predictions.insert(0, "expected", golden[TARGET])
    dataframe_regression.check(predictions.reset_index(drop=True), default_tolerance=PROBABILITY_TOLERANCE)
