"""The example task's data: schema, loading, split, preprocessing, torch datasets."""

from .dataset import TabularDataset
from .load import embedded_dataset_path, load_table, read_csv
from .preprocess import Preprocessor
from .schema import DataValidationError, raw_schema, request_schema, validate
from .split import Split, stratified_split

__all__ = [
    "DataValidationError",
    "Preprocessor",
    "Split",
    "TabularDataset",
    "embedded_dataset_path",
    "load_table",
    "raw_schema",
    "read_csv",
    "request_schema",
    "stratified_split",
    "validate",
]
