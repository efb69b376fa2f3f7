"""The schema of the raw table and of prediction requests: good data passes, bad data is named."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from {{ cookiecutter.package_name }}.data import (
    DataValidationError,
    load_table,
    raw_schema,
    read_csv,
    request_schema,
    validate,
)
from {{ cookiecutter.package_name }}.data.schema import COLUMNS, FEATURES, TARGET


def editable(table: pd.DataFrame) -> pd.DataFrame:
    """The table with object columns, so that a test can write any value anywhere."""
    return table.astype(object)


def test_embedded_table_passes_the_schema(embedded_table):
    validated = validate(embedded_table, raw_schema())
    assert len(validated) == len(embedded_table) > 300, f"{len(validated)} rows after validation"


def test_embedded_table_has_every_schema_column_and_class(embedded_table):
    assert list(COLUMNS) == [c for c in embedded_table.columns if c in COLUMNS], "schema columns missing or reordered"
    classes = sorted(embedded_table[TARGET].unique())
    assert classes == list(COLUMNS[TARGET].categories), f"classes in the data: {classes}"


def test_validation_coerces_numeric_columns_to_float(embedded_table):
    for column in ("bill_length_mm", "body_mass_g"):
        assert embedded_table[column].dtype == np.float64, f"{column} has dtype {embedded_table[column].dtype}"


def test_wrong_dtype_is_refused_naming_column_and_row(table):
    bad = editable(table)
    bad.loc[3, "bill_length_mm"] = "thirty-nine"
    with pytest.raises(DataValidationError, match=r"bill_length_mm.*rows \[3\]"):
        validate(bad, raw_schema())


def test_unknown_category_is_refused_naming_column_row_and_value(table):
    bad = editable(table)
    bad.loc[5, "island"] = "Atlantis"
    with pytest.raises(DataValidationError, match=r"island.*rows \[5\].*Atlantis"):
        validate(bad, raw_schema())


def test_unknown_class_label_is_refused(table):
    bad = editable(table)
    bad.loc[0, TARGET] = "Emperor"
    with pytest.raises(DataValidationError, match=rf"{TARGET}.*rows \[0\].*Emperor"):
        validate(bad, raw_schema())


@pytest.mark.parametrize(("column", "value"), [("body_mass_g", 1e6), ("flipper_length_mm", -5.0), ("year", 1850)])
def test_out_of_range_value_is_refused_naming_column_and_row(table, column, value):
    bad = editable(table)
    bad.loc[7, column] = value
    with pytest.raises(DataValidationError, match=rf"'{column}'.*in_range.*rows \[7\]"):
        validate(bad, raw_schema())


def test_several_problems_are_reported_together(table):
    bad = editable(table)
    bad.loc[1, "island"] = "Atlantis"
    bad.loc[2, "body_mass_g"] = 1e6
    with pytest.raises(DataValidationError) as raised:
        validate(bad, raw_schema())
    for column in ("island", "body_mass_g"):
        assert column in str(raised.value), f"'{column}' missing from: {raised.value}"


def test_too_many_missing_values_are_refused_naming_the_column(table):
    limit = COLUMNS["sex"].max_missing_fraction
    bad = editable(table)
    bad.loc[: int(len(bad) * (limit + 0.05)), "sex"] = np.nan
    with pytest.raises(DataValidationError, match=r"'sex'.*missing"):
        validate(bad, raw_schema())


def test_a_few_missing_values_are_allowed_where_the_schema_allows_them(table):
    table.loc[:3, "sex"] = np.nan
    assert len(validate(table, raw_schema())) == len(table)


def test_missing_value_in_a_column_that_allows_none_is_refused_naming_the_row(table):
    bad = editable(table)
    bad.loc[4, "island"] = np.nan
    with pytest.raises(DataValidationError, match=r"island.*rows \[4\]"):
        validate(bad, raw_schema())


@pytest.mark.parametrize("column", list(COLUMNS))
def test_missing_column_is_refused_naming_it(table, column):
    with pytest.raises(DataValidationError, match=rf"missing column\(s\) \['{column}'\]"):
        validate(table.drop(columns=column), raw_schema())


def test_empty_table_is_refused(table):
    with pytest.raises(DataValidationError, match="no rows"):
        validate(table.iloc[:0], raw_schema())


def test_extra_columns_are_allowed(table):
    table["notes"] = "seen on a Tuesday"
    assert "notes" in validate(table, raw_schema()).columns


def test_request_schema_needs_no_target_and_allows_a_missing_numeric_value(table):
    request = table[list(FEATURES)].head(3).copy()
    request.loc[0, "bill_length_mm"] = np.nan
    assert len(validate(request, request_schema())) == 3


def test_request_schema_refuses_a_missing_island(table):
    request = editable(table[list(FEATURES)].head(3))
    request.loc[1, "island"] = np.nan
    with pytest.raises(DataValidationError, match=r"island.*rows \[1\]"):
        validate(request, request_schema())


def test_a_bad_file_is_named_in_the_error(tmp_path, embedded_table):
    path = tmp_path / "penguins.csv"
    bad = editable(embedded_table)
    bad.loc[2, "island"] = "Atlantis"
    bad.to_csv(path, index=False)
    with pytest.raises(DataValidationError, match=rf"{path.name}.*island.*rows \[2\]"):
        load_table(path)


def test_a_file_that_is_not_csv_is_a_clear_error(tmp_path):
    path = tmp_path / "weights.csv"
    path.write_bytes(b"\x80\x04\x95\x00\xff\xfe binary \x00\x00")
    with pytest.raises(DataValidationError, match="not a readable CSV"):
        read_csv(path)


def test_a_missing_file_is_a_file_not_found_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_csv(tmp_path / "absent.csv")


RANGED = [name for name, spec in COLUMNS.items() if spec.min_value is not None and spec.max_value is not None]


@st.composite
def out_of_range_edits(draw):
    column = draw(st.sampled_from(RANGED))
    spec = COLUMNS[column]
    span = spec.max_value - spec.min_value
    above = st.floats(spec.max_value + 1, spec.max_value + 10 * span)
    below = st.floats(spec.min_value - 10 * span, spec.min_value - 1)
    return column, draw(st.integers(0, 10_000)), round(draw(above | below))


@settings(max_examples=10, deadline=None)
@given(out_of_range_edits())
def test_any_out_of_range_value_is_refused_naming_its_column_and_row(embedded_table, edit):
    column, row, value = edit
    row %= len(embedded_table)
    bad = editable(embedded_table)
    bad.loc[row, column] = value
    with pytest.raises(DataValidationError, match=rf"'{column}'.*in_range.*rows \[{row}\]"):
        validate(bad, raw_schema())
