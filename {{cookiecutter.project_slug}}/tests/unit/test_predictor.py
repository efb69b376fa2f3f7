"""Serving: raw rows in, the training preprocessing applied, probabilities out, bad input refused."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from {{ cookiecutter.package_name }}.data import request_schema, validate
from {{ cookiecutter.package_name }}.data.schema import COLUMNS, FEATURES, TARGET
from {{ cookiecutter.package_name }}.inference import Predictor
from {{ cookiecutter.package_name }}.models import available_models


@pytest.fixture
def predictor(tiny_model, preprocessor, device):
    """Each registered model, untrained and tiny, with the fitted preprocessing: enough to test the plumbing."""
    return Predictor(tiny_model, preprocessor, device)


@pytest.fixture
def any_predictor(make_model, preprocessor, device):
    """A predictor around the first registered model, for checks that do not depend on the model."""
    return Predictor(make_model(available_models()[0]), preprocessor, device)


@pytest.fixture
def requests(embedded_table, split):
    """Raw rows the model never trained on, as a client would send them (no label)."""
    return embedded_table.iloc[split.test][list(FEATURES)].reset_index(drop=True)


def test_predictor_puts_the_model_in_eval_mode(predictor):
    assert not predictor.model.training, "the predictor serves a model in train mode (dropout on)"


def test_inference_features_equal_training_features_for_the_same_rows(
    any_predictor, preprocessor, embedded_table, split
):
    # The few rows of a request must be transformed with the statistics fitted on the training
    # split, exactly as during training: refitting on the request or skipping a step is skew.
    for rows in (split.train[:5], split.test[:1], split.val):
        raw = embedded_table.iloc[rows]
        at_training = preprocessor.transform(validate(raw, request_schema()))
        at_inference = any_predictor.features(raw[list(FEATURES)])
        assert np.array_equal(at_inference, at_training), (
            f"inference features differ from training features for rows {rows[:5].tolist()}: max difference "
            f"{np.abs(at_inference - at_training).max():.3g}"
        )


def test_probabilities_have_one_column_per_class_and_rows_summing_to_one(predictor, requests):
    probabilities = predictor.predict_proba(requests)
    assert probabilities.shape == (len(requests), len(predictor.classes)), probabilities.shape
    assert ((probabilities >= 0) & (probabilities <= 1)).all(), f"a probability outside [0, 1]: {probabilities}"
    sums = probabilities.sum(axis=1)
    assert np.allclose(sums, 1, atol=1e-5), f"row sums {sums[:5]}"


def test_prediction_table_has_label_confidence_and_a_probability_per_class(predictor, requests):
    predictions = predictor.predict(requests)
    expected = ["label", "confidence", *[f"probability_{name}" for name in predictor.classes]]
    assert list(predictions.columns) == expected, list(predictions.columns)
    assert predictions.index.equals(requests.index), "predictions are not aligned with the input rows"
    probabilities = predictions[[f"probability_{name}" for name in predictor.classes]].to_numpy()
    assert np.allclose(predictions["confidence"], probabilities.max(axis=1))
    best = [predictor.classes[i] for i in probabilities.argmax(axis=1)]
    assert predictions["label"].tolist() == best, "label is not the most probable class"


def test_batch_prediction_equals_one_by_one_prediction(predictor, requests):
    requests = requests.head(12)
    batch = predictor.predict_proba(requests)
    for i, record in enumerate(requests.to_dict(orient="records")):
        single = predictor.predict_record(record)
        one = np.array([single.probabilities[name] for name in predictor.classes])
        assert np.allclose(one, batch[i], rtol=0, atol=1e-6), f"row {i}: alone {one}, in the batch {batch[i]}"
        assert single.label == predictor.classes[int(batch[i].argmax())], f"row {i}: different label alone"


def test_allowed_missing_values_are_imputed_not_refused(any_predictor, requests):
    rows = requests.head(2).copy()
    rows.loc[0, "sex"] = np.nan
    rows.loc[1, "bill_length_mm"] = np.nan
    probabilities = any_predictor.predict_proba(rows)
    assert np.isfinite(probabilities).all(), f"non-finite probabilities {probabilities}"


def test_extra_columns_such_as_the_label_are_ignored(any_predictor, embedded_table, split):
    labelled = embedded_table.iloc[split.test[:4]]
    assert np.array_equal(any_predictor.predict_proba(labelled), any_predictor.predict_proba(labelled[list(FEATURES)]))


def test_score_is_the_accuracy_on_labelled_rows(any_predictor, embedded_table, split):
    labelled = embedded_table.iloc[split.test]
    predicted = any_predictor.predict(labelled)["label"]
    expected = float((predicted.to_numpy() == labelled[TARGET].to_numpy()).mean())
    assert any_predictor.score(labelled) == {"accuracy": pytest.approx(expected), "rows": len(labelled)}


def test_score_needs_the_label_column(any_predictor, requests):
    with pytest.raises(ValueError, match=TARGET):
        any_predictor.score(requests)


def bad_requests() -> dict[str, tuple]:
    """Each bad request: (how to break a good frame, what the error must mention)."""

    def set_value(column, value):
        def edit(frame):
            frame = frame.astype(object)
            frame.loc[frame.index[0], column] = value
            return frame

        return edit

    return {
        "empty": (lambda frame: frame.iloc[:0], "no rows"),
        "missing-column": (lambda frame: frame.drop(columns="flipper_length_mm"), "flipper_length_mm"),
        "unseen-category": (set_value("island", "Atlantis"), "Atlantis"),
        "nan-where-forbidden": (set_value("island", np.nan), "island"),
        "out-of-range": (set_value("body_mass_g", 1e7), "body_mass_g"),
        "not-a-number": (set_value("bill_depth_mm", "deep"), "bill_depth_mm"),
    }


@pytest.mark.parametrize(("breakage", "message"), bad_requests().values(), ids=bad_requests().keys())
def test_bad_input_is_a_value_error_that_says_what_is_wrong(any_predictor, requests, breakage, message):
    with pytest.raises(ValueError, match=message):
        any_predictor.predict(breakage(requests.head(3).copy()))


@pytest.mark.parametrize("record", [{}, None, [1, 2, 3]], ids=["empty", "none", "list"])
def test_a_record_must_be_a_non_empty_mapping(any_predictor, record):
    with pytest.raises(ValueError, match="mapping"):
        any_predictor.predict_record(record)


def test_input_that_is_not_a_data_frame_is_a_value_error(any_predictor, requests):
    with pytest.raises(ValueError, match="DataFrame"):
        any_predictor.predict(requests.to_numpy())


@st.composite
def valid_requests(draw, max_rows: int = 6) -> pd.DataFrame:
    """Request rows anywhere in the schema's ranges and categories, with missing values where allowed."""
    rows = draw(st.integers(1, max_rows))
    data = {}
    for column in FEATURES:
        spec = COLUMNS[column]
        value = st.sampled_from(spec.categories) if spec.categories else st.floats(spec.min_value, spec.max_value)
        if spec.max_missing_fraction > 0:
            value = value | st.none()
        data[column] = draw(st.lists(value, min_size=rows, max_size=rows))
    return pd.DataFrame(data)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frame=valid_requests())
def test_any_valid_request_gets_finite_probabilities_summing_to_one(predictor, frame):
    probabilities = predictor.predict_proba(frame)
    assert np.isfinite(probabilities).all(), f"non-finite probabilities for\n{frame}"
    assert np.allclose(probabilities.sum(axis=1), 1, atol=1e-5), f"row sums {probabilities.sum(axis=1)}"


def test_a_record_with_the_columns_in_another_order_gets_the_same_prediction(predictor, requests):
    record = requests.iloc[0].to_dict()
    reordered = dict(reversed(list(record.items())))
    assert predictor.predict_record(record) == predictor.predict_record(reordered)


def test_predictions_do_not_depend_on_the_input_index(predictor, requests):
    shuffled = requests.head(6).set_axis([10, 3, 7, 0, 99, 5])
    assert np.array_equal(predictor.predict_proba(shuffled), predictor.predict_proba(requests.head(6)))
    assert predictor.predict(shuffled).index.tolist() == [10, 3, 7, 0, 99, 5]
