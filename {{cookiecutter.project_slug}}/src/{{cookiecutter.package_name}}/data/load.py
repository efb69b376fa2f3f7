"""Reading a table from disk and checking it against the schema."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pandas as pd

from .schema import DataValidationError, raw_schema, validate

NA_VALUES = ("NA", "")


def embedded_dataset_path() -> Path:
    """Path of the table shipped with the package (Palmer penguins, CC0)."""
    return Path(str(resources.files(__package__).joinpath("penguins.csv")))


def read_csv(path: str | Path) -> pd.DataFrame:
    """Read a CSV with the project's missing-value markers; a clear error if it cannot be read."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        return pd.read_csv(path, na_values=list(NA_VALUES), keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise DataValidationError(f"{path}: not a readable CSV ({err})") from None


def load_table(path: str | Path | None = None) -> pd.DataFrame:
    """Load and validate the labelled table (the embedded one when ``path`` is None)."""
    path = embedded_dataset_path() if path is None else Path(path)
    frame = read_csv(path)
    return validate(frame, raw_schema(), source=str(path)).reset_index(drop=True)
