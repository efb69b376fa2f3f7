"""Preprocessing: shape and dtype, standardisation fitted on the training rows only, no NaN out."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from {{ cookiecutter.package_name }}.data import Preprocessor, TabularDataset, request_schema
from {{ cookiecutter.package_name }}.data.schema import (
    CATEGORICAL_FEATURES,
    COLUMNS,
    NUMERIC_FEATURES,
    TARGET,
)

N_NUMERIC = len(NUMERIC_FEATURES)


def expected_width() -> int:
    return N_NUMERIC + sum(len(COLUMNS[c].categories) for c in CATEGORICAL_FEATURES)


def assert_standardised(block: np.ndarray, what: str) -> None:
    """Each column has mean ~0 and standard deviation ~1 (population, ddof=0)."""
    means, stds = block.astype(np.float64).mean(axis=0), block.astype(np.float64).std(axis=0)
    assert np.allclose(means, 0, atol=1e-5), f"{what}: column means {means.round(4).tolist()}, expected 0"
    assert np.allclose(stds, 1, atol=1e-5), f"{what}: column standard deviations {stds.round(4).tolist()}, expected 1"


def test_features_are_float32_with_one_column_per_number_and_category(preprocessor, embedded_table):
    features = preprocessor.transform(embedded_table)
    assert features.dtype == np.float32, f"dtype {features.dtype}"
    assert features.shape == (len(embedded_table), expected_width()), f"shape {features.shape}"
    assert preprocessor.num_features == expected_width() == len(preprocessor.feature_names)


def test_features_are_finite_although_the_table_has_missing_values(preprocessor, embedded_table):
    assert embedded_table[list(NUMERIC_FEATURES)].isna().any().any(), "the test needs missing values"
    features = preprocessor.transform(embedded_table)
    assert np.isfinite(features).all(), f"{int((~np.isfinite(features)).sum())} non-finite features"


def test_numeric_features_of_the_training_rows_are_standardised(preprocessor, embedded_table, split):
    features = preprocessor.transform(embedded_table.iloc[split.train])
    assert_standardised(features[:, :N_NUMERIC], "training rows")


def test_statistics_are_fitted_on_the_training_rows_only(embedded_table, split):
    train = embedded_table.iloc[split.train]
    fitted = Preprocessor().fit(train).state["numeric"]
    whole = Preprocessor().fit(embedded_table).state["numeric"]
    for column in NUMERIC_FEATURES:
        filled = train[column].fillna(train[column].median())
        assert fitted[column]["mean"] == pytest.approx(filled.mean()), f"{column}: mean is not the training mean"
        assert fitted[column]["std"] == pytest.approx(filled.std(ddof=0)), f"{column}: std is not the training std"
        assert fitted[column]["mean"] != whole[column]["mean"], f"{column}: training mean equals the whole table's"


def test_rows_outside_the_training_split_are_not_exactly_standardised(preprocessor, embedded_table, split):
    test_rows = preprocessor.transform(embedded_table.iloc[split.test])[:, :N_NUMERIC].astype(np.float64)
    assert not np.allclose(test_rows.mean(axis=0), 0, atol=1e-5), "test rows standardised exactly: fitted on them?"


def test_categories_are_one_hot_with_a_single_one_per_present_value(preprocessor, embedded_table):
    features = preprocessor.transform(embedded_table)
    start = N_NUMERIC
    for column in CATEGORICAL_FEATURES:
        width = len(preprocessor.state["categorical"][column])
        block = features[:, start : start + width]
        assert set(np.unique(block).tolist()) <= {0.0, 1.0}, f"{column}: values other than 0 and 1"
        present = embedded_table[column].notna().to_numpy()
        assert (block[present].sum(axis=1) == 1).all(), f"{column}: a present value is not exactly one 1"
        assert (block[~present].sum(axis=1) == 0).all(), f"{column}: a missing value is not all zeros"
        start += width


def test_a_constant_column_gives_finite_features(tiny_table):
    tiny_table["body_mass_g"] = 4000.0
    features = Preprocessor().fit(tiny_table).transform(tiny_table)
    column = NUMERIC_FEATURES.index("body_mass_g")
    assert np.isfinite(features).all(), f"non-finite features for a constant column: {features[:3, column]}"
    assert (features[:, column] == 0).all(), f"a constant column should become zeros, got {features[:3, column]}"


def test_a_column_constant_up_to_float_rounding_becomes_zeros_not_amplified_noise(tiny_table):
    base = 4000.0
    tiny_table["body_mass_g"] = [base + (i % 3) * 10 * np.spacing(base) for i in range(len(tiny_table))]
    features = Preprocessor().fit(tiny_table).transform(tiny_table)
    column = features[:, NUMERIC_FEATURES.index("body_mass_g")]
    assert np.abs(column).max() < 1e-6, f"rounding noise became features up to {np.abs(column).max():.3g}"


def test_an_all_missing_column_gives_finite_features(tiny_table):
    tiny_table["bill_depth_mm"] = np.nan
    features = Preprocessor().fit(tiny_table).transform(tiny_table)
    assert np.isfinite(features).all(), "non-finite features for a column that is entirely missing"


def test_missing_numbers_at_transform_time_become_the_training_median(preprocessor, tiny_table):
    row = tiny_table.head(1).copy()
    row[list(NUMERIC_FEATURES)] = np.nan
    features = preprocessor.transform(row)[0, :N_NUMERIC]
    for i, column in enumerate(NUMERIC_FEATURES):
        stats = preprocessor.state["numeric"][column]
        expected = (stats["median"] - stats["mean"]) / stats["std"]
        assert features[i] == pytest.approx(expected, abs=1e-5), f"{column}: missing value became {features[i]}"


def test_an_unseen_category_is_a_value_error_naming_column_and_value(preprocessor, tiny_table):
    rows = tiny_table.astype(object)
    rows.loc[2, "island"] = "Atlantis"
    with pytest.raises(ValueError, match=r"'island'.*Atlantis"):
        preprocessor.transform(rows)


def test_a_missing_column_is_a_value_error_naming_it(preprocessor, tiny_table):
    with pytest.raises(ValueError, match="flipper_length_mm"):
        preprocessor.transform(tiny_table.drop(columns="flipper_length_mm"))


def test_transform_before_fit_is_an_error(tiny_table):
    with pytest.raises(RuntimeError, match="not fitted"):
        Preprocessor().transform(tiny_table)


def test_fitting_on_no_rows_is_an_error(tiny_table):
    with pytest.raises(ValueError, match="empty"):
        Preprocessor().fit(tiny_table.iloc[:0])


def test_state_survives_a_weights_only_checkpoint_round_trip(preprocessor, embedded_table, tmp_path):
    path = tmp_path / "preprocessor.pt"
    torch.save(preprocessor.state_dict(), path)
    restored = Preprocessor.from_state_dict(torch.load(path, weights_only=True))
    expected, actual = preprocessor.transform(embedded_table), restored.transform(embedded_table)
    assert np.array_equal(expected, actual), "a restored preprocessor transforms differently"


def test_labels_encode_to_int64_ids_and_decode_back(preprocessor, embedded_table):
    labels = embedded_table[TARGET]
    ids = preprocessor.encode_labels(labels)
    assert ids.dtype == np.int64, f"label ids have dtype {ids.dtype}"
    assert sorted(set(ids.tolist())) == list(range(len(preprocessor.classes)))
    assert preprocessor.decode_labels(ids) == labels.tolist(), "decode(encode(labels)) is not the labels"


def test_an_unknown_label_is_a_value_error(preprocessor):
    with pytest.raises(ValueError, match="Emperor"):
        preprocessor.encode_labels(["Adelie", "Emperor"])


def test_dataset_pairs_float32_features_with_int64_labels(preprocessor, tiny_table, tiny_dataset):
    features, label = tiny_dataset[0]
    assert len(tiny_dataset) == len(tiny_table)
    assert features.dtype == torch.float32, features.dtype
    assert features.shape == (preprocessor.num_features,), features.shape
    assert label.dtype == torch.int64, label.dtype
    assert label.ndim == 0, label.shape


def test_dataset_refuses_features_and_labels_of_different_lengths():
    with pytest.raises(ValueError, match="3 feature rows but 2 labels"):
        TabularDataset(np.zeros((3, 4), dtype=np.float32), np.zeros(2, dtype=np.int64))


@settings(max_examples=5, deadline=None)
@given(request_schema().strategy(size=8))
def test_any_valid_request_becomes_finite_float32_features_of_the_fitted_width(preprocessor, frame):
    features = preprocessor.transform(frame)
    assert features.dtype == np.float32, features.dtype
    assert features.shape == (8, preprocessor.num_features), features.shape
    assert np.isfinite(features).all(), f"non-finite features for\n{frame}"


@st.composite
def numeric_tables(draw):
    """Small tables of numbers in the schema's ranges with some missing values, and valid categories."""
    rows = draw(st.integers(2, 30))
    data = {}
    for column in NUMERIC_FEATURES:
        spec = COLUMNS[column]
        value = st.floats(spec.min_value, spec.max_value) | st.none()
        data[column] = draw(st.lists(value, min_size=rows, max_size=rows))
    for column in CATEGORICAL_FEATURES:
        data[column] = draw(st.lists(st.sampled_from(COLUMNS[column].categories), min_size=rows, max_size=rows))
    data[TARGET] = draw(st.lists(st.sampled_from(COLUMNS[TARGET].categories), min_size=rows, max_size=rows))
    frame = pd.DataFrame(data)
    frame[list(NUMERIC_FEATURES)] = frame[list(NUMERIC_FEATURES)].astype("float64")
    return frame


@settings(max_examples=20, deadline=None)
@given(numeric_tables())
def test_fitting_on_any_table_standardises_that_table(frame):
    numeric = Preprocessor().fit(frame).transform(frame)[:, :N_NUMERIC].astype(np.float64)
    assert np.isfinite(numeric).all(), f"non-finite features for\n{frame}"
    assert np.allclose(numeric.mean(axis=0), 0, atol=1e-4), f"means {numeric.mean(axis=0)} for\n{frame}"
    stds = numeric.std(axis=0)
    # A column that is constant after imputation becomes zeros; any other gets unit variance.
    assert np.all(np.isclose(stds, 1, atol=1e-3) | (stds < 1e-3)), f"standard deviations {stds} for\n{frame}"
