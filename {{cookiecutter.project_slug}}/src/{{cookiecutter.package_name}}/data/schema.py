"""The contract of the raw table: columns, dtypes, categories, ranges, missing values.

This module is the one place that knows the columns of the example task. To use your
own table, describe its columns in ``COLUMNS`` and name the target and features below;
preprocessing, the predictor and the tests read everything from here.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import pandera.pandas as pa


@dataclass(frozen=True)
class ColumnSpec:
    """One raw column: its kind, what values it may take, how much may be missing."""

    kind: str  # "numeric", "categorical" or "integer"
    categories: tuple[str, ...] = ()
    min_value: float | None = None
    max_value: float | None = None
    max_missing_fraction: float = 0.0


COLUMNS: dict[str, ColumnSpec] = {
    "species": ColumnSpec("categorical", categories=("Adelie", "Chinstrap", "Gentoo")),
    "island": ColumnSpec("categorical", categories=("Biscoe", "Dream", "Torgersen")),
    "bill_length_mm": ColumnSpec("numeric", min_value=10, max_value=100, max_missing_fraction=0.05),
    "bill_depth_mm": ColumnSpec("numeric", min_value=5, max_value=40, max_missing_fraction=0.05),
    "flipper_length_mm": ColumnSpec("numeric", min_value=100, max_value=300, max_missing_fraction=0.05),
    "body_mass_g": ColumnSpec("numeric", min_value=1000, max_value=10000, max_missing_fraction=0.05),
    "sex": ColumnSpec("categorical", categories=("female", "male"), max_missing_fraction=0.10),
    "year": ColumnSpec("integer", min_value=2000, max_value=2100),
}

TARGET = "species"
NUMERIC_FEATURES = ("bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g")
CATEGORICAL_FEATURES = ("island", "sex")
FEATURES = NUMERIC_FEATURES + CATEGORICAL_FEATURES

_DTYPES = {"numeric": float, "categorical": str, "integer": int}


class DataValidationError(ValueError):
    """A table breaks the schema; the message names the columns, checks and rows."""


def _column(name: str, spec: ColumnSpec, *, table_checks: bool) -> pa.Column:
    checks = []
    if spec.categories:
        checks.append(pa.Check.isin(list(spec.categories)))
    if spec.min_value is not None or spec.max_value is not None:
        checks.append(pa.Check.in_range(spec.min_value, spec.max_value))
    if table_checks and spec.max_missing_fraction > 0:
        limit = spec.max_missing_fraction
        checks.append(
            pa.Check(
                lambda s, limit=limit: s.isna().mean() <= limit,
                ignore_na=False,
                name=f"max_missing_fraction({limit})",
                error=f"more than {100 * limit:g}% of '{name}' is missing",
            )
        )
    return pa.Column(
        _DTYPES[spec.kind],
        checks=checks,
        nullable=spec.max_missing_fraction > 0,
        coerce=True,
        required=True,
    )


def raw_schema() -> pa.DataFrameSchema:
    """Schema of a whole labelled table, as read from disk for training."""
    return pa.DataFrameSchema(
        {name: _column(name, spec, table_checks=True) for name, spec in COLUMNS.items()},
        strict=False,
        name="raw table",
    )


def request_schema() -> pa.DataFrameSchema:
    """Schema of the rows sent for prediction: the features, no target, no table-level checks.

    A single record may miss a value the training table allows to be missing (it is
    imputed), but it may not hold an unknown category or an implausible value.
    """
    return pa.DataFrameSchema(
        {name: _column(name, COLUMNS[name], table_checks=False) for name in FEATURES},
        strict=False,
        name="prediction input",
    )


def validate(frame: pd.DataFrame, schema: pa.DataFrameSchema, source: str = "table") -> pd.DataFrame:
    """Validate ``frame`` against ``schema``; raise DataValidationError naming what is wrong."""
    if len(frame) == 0:
        raise DataValidationError(f"{source}: no rows")
    missing = [name for name in schema.columns if name not in frame.columns]
    if missing:
        raise DataValidationError(f"{source}: missing column(s) {missing}")
    try:
        return schema.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as err:
        raise DataValidationError(f"{source}: {_describe(err.failure_cases)}") from None


def _describe(failures: pd.DataFrame, max_rows: int = 5) -> str:
    """One readable line per failing column and check: which rows, which values."""
    parts = []
    for (column, check), group in failures.groupby(["column", "check"], sort=False, dropna=False):
        rows = [int(i) for i in group["index"].dropna().tolist()]
        values = group["failure_case"].tolist()
        where = f"rows {rows[:max_rows]}" + (" ..." if len(rows) > max_rows else "") if rows else "the column"
        parts.append(f"column '{column}' fails {check} at {where} (values {values[:max_rows]})")
    return "; ".join(parts)
