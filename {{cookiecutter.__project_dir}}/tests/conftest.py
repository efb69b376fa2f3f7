"""Fixtures for every tier: seeding, the device, tiny data from the embedded dataset, tiny models.

Nothing here knows the task: the data comes through the task's ``load_examples`` and its
fitted ``Preprocessor`` (see ``task.py``), so these fixtures serve a table, images or text.

``model_name`` is parametrised over the model registry: a test that asks for it (or for
``tiny_model``) runs once per registered model, so registering a model enrols it in every
contract test. The ML assertions themselves live in the package, in ``testing.py``.
"""

from __future__ import annotations

import gc
import os
import random
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
{%- if cookiecutter.task == "text" %}
import pandas as pd
{%- endif %}
import pytest
import torch
from hypothesis import HealthCheck, settings
from torch import nn
from torch.utils.data import Dataset

from {{ cookiecutter.package_name }}.config import TrainConfig
from {{ cookiecutter.package_name }}.data import Preprocessor, load_examples, write_examples
{%- if cookiecutter.task == "image" %}
from {{ cookiecutter.package_name }}.data.images import image_series
{%- elif cookiecutter.task == "tabular" %}
from {{ cookiecutter.package_name }}.data.schema import COLUMNS
{%- endif %}
from {{ cookiecutter.package_name }}.inference import Predictor
from {{ cookiecutter.package_name }}.models import available_models, build_for, model_recipe
from {{ cookiecutter.package_name }}.task import Examples
from {{ cookiecutter.package_name }}.testing import TINY_MODEL_OPTIONS
from {{ cookiecutter.package_name }}.training import Split, split_examples, tracking
from {{ cookiecutter.package_name }}.training.seed import (
    capture_rng_state,
    restore_rng_state,
    seed_everything,
)

# The suite's many short runs are not logged to MLflow, nor those of the torchrun processes it starts
# (test_tracking.py turns it back on for its own).
os.environ[tracking.SWITCH] = "0"
SEED = 0
# Examples of each class in the tiny set (drawn from the training split).
TINY_ROWS_PER_CLASS = 8

# Property tests: timings on shared CI runners are noisy, and drawing data frames is slow by
# Hypothesis's standards; each test sets its own (small) max_examples.
settings.register_profile("suite", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("suite")


@pytest.fixture(autouse=True)
def seed() -> Iterator[int]:
    """Seed python, numpy and torch before each test; give the global generators back after."""
    state = capture_rng_state()
    seed_everything(SEED)
    yield SEED
    restore_rng_state(state)


@pytest.hookimpl(wrapper=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function):
    """Seed python and numpy again just before the test body: pytest-randomly reseeds them after setup."""
    random.seed(SEED)
    np.random.seed(SEED)  # noqa: NPY002 - the legacy global generator is the one pytest-randomly reseeds
    return (yield)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Spare the interpreter's exit a garbage collection of everything torch imported (~0.5 s a run)."""
    gc.freeze()


@pytest.fixture(scope="session")
def device() -> torch.device:
    """CUDA when a GPU is visible, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


# -- data --------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def embedded_examples() -> Examples:
    """The embedded dataset, read and validated once. Do not modify it."""
    return load_examples()


@pytest.fixture(scope="session")
def split(embedded_examples: Examples) -> Split:
    """The default train/validation/test split of the embedded dataset."""
    config = TrainConfig()
    return split_examples(embedded_examples, config.val_fraction, config.test_fraction, SEED)


@pytest.fixture(scope="session")
def preprocessor(embedded_examples: Examples, split: Split) -> Preprocessor:
    """Preprocessing fitted on the training split. Shared: do not refit it."""
    return Preprocessor().fit(embedded_examples.subset(split.train))


@pytest.fixture(scope="session")
def tiny_examples(embedded_examples: Examples, split: Split) -> Examples:
    """A few training examples of every class, in dataset order."""
    labels = embedded_examples.labels
    rows = [
        int(i) for label in sorted(set(labels)) for i in split.train[labels[split.train] == label][:TINY_ROWS_PER_CLASS]
    ]
    return embedded_examples.subset(sorted(rows))


@pytest.fixture(scope="session")
def unlike_training(tiny_examples: Examples) -> tuple[Examples, str]:
    """(examples, what they are): valid inputs of kinds the embedded data never holds, labelled."""
    labels = tiny_examples.labels[:4]
{%- if cookiecutter.task == "text" %}
    first, second = (str(text) for text in tiny_examples.read([0, 1]))
    texts = [
        " ".join([first] * 60),  # far longer than the longest text kept
        f"{first}\n{second}",  # a line break inside
        f"  {second.upper()}\t ",  # white space around, another case
        "é" * 400 + " " + first,  # a long run of characters the tokenizer may not know
    ]
    return Examples(pd.Series(texts, dtype=object), labels), "texts longer than the longest kept, odd case, spaces"
{%- elif cookiecutter.task == "image" %}
    rng = np.random.default_rng(0)
    images = [
        rng.integers(0, 256, (37, 23, 3), dtype=np.uint8),  # colour, another size and shape
        rng.integers(0, 256, (3, 5), dtype=np.uint8),  # grey, smaller than the training images
        rng.integers(0, 256, (120, 120), dtype=np.uint8),  # grey, far larger
        np.full((8, 8, 3), 200, dtype=np.uint8),  # colour at the training size, one flat colour
    ]
    return Examples(image_series(images), labels), "images of other sizes and colour modes than the training ones"
{%- else %}
    rows = tiny_examples.read([0, 1, 2, 3]).copy()
    for name in rows.columns:  # each column at the edge of what the schema allows, or missing where it may be
        spec = COLUMNS.get(name)
        if spec is None or spec.kind == "categorical":
            continue
        rows.loc[rows.index[0], name] = spec.max_value if spec.max_value is not None else rows[name].iloc[0]
        rows.loc[rows.index[1], name] = spec.min_value if spec.min_value is not None else rows[name].iloc[1]
        if spec.max_missing_fraction > 0:
            rows.loc[rows.index[2], name] = np.nan
    return Examples(rows, labels), "rows at the schema's bounds and with every value that may be missing missing"
{%- endif %}


@pytest.fixture
def tiny_dataset(tiny_examples: Examples, preprocessor: Preprocessor) -> Dataset:
    """The tiny examples as the torch Dataset the training loop reads (no augmentation)."""
    return preprocessor.dataset(tiny_examples, train=False)


@pytest.fixture
def tiny_batch(
    tiny_dataset: Dataset, preprocessor: Preprocessor, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs, labels) of the tiny examples, preprocessed, as one batch on ``device``."""
    inputs, labels = preprocessor.collate([tiny_dataset[i] for i in range(len(tiny_dataset))])
    return inputs.to(device), labels.to(device)


@pytest.fixture
def extreme_inputs(
    tiny_batch: tuple[torch.Tensor, torch.Tensor], preprocessor: Preprocessor
) -> tuple[torch.Tensor, str]:
    """(inputs, what they are): valid model inputs at the edge of what the data gives."""
{%- if cookiecutter.task == "text" %}
    features, _ = tiny_batch
    sizes = preprocessor.model_inputs()
    pad_id, last_id, longest = sizes["pad_id"], sizes["vocab_size"] - 1, sizes["max_length"]
    rows = torch.full((4, longest), pad_id, dtype=features.dtype, device=features.device)
    rows[1, :] = last_id  # the longest text, of the last token in the vocabulary
    rows[2, 0] = last_id  # a text of one token
    rows[3, : features.shape[1]] = features[0]  # a real text, padded to the longest length
    return rows, "a row of padding only (an empty text), the longest text, a one-token text and a padded text"
{%- else %}
    features, _ = tiny_batch
    return features * 1e3, "inputs a thousand standard deviations out"
{%- endif %}


# Integration and distributed runs train on a stratified sample of QUICK_EXAMPLES examples of
# data larger than SAMPLE_ABOVE: what they check (plumbing, settings, resuming, serving, scaling
# out) needs seconds of training, not minutes.
QUICK_EXAMPLES = 1000
SAMPLE_ABOVE = 2000


@pytest.fixture(scope="session")
def quick_data(tmp_path_factory: pytest.TempPathFactory, embedded_examples: Examples) -> str | None:
    """The data of integration and distributed runs: None (the embedded dataset) up to ``SAMPLE_ABOVE``
    examples, else a stratified sample of ``QUICK_EXAMPLES`` of it, written in the task's own
    format (keeping the rows of a test split the data names)."""
    examples = embedded_examples
    if len(examples) <= SAMPLE_ABOVE:
        return None
    rng = np.random.default_rng(0)
    share = QUICK_EXAMPLES / len(examples)
    rows = []
    for label in sorted(set(examples.labels.tolist())):
        of_class = np.flatnonzero(examples.labels == label)
        rows.extend(rng.permutation(of_class)[: max(3, round(len(of_class) * share))].tolist())
    path = tmp_path_factory.mktemp("quick-data") / "sample"
    return str(write_examples(examples.subset(sorted(rows)), path))


# -- files -------------------------------------------------------------------------------
class MakeDirectoryWhenUnpickled:
    """Unpickling this runs ``os.mkdir(path)``: a harmless stand-in for arbitrary code."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return os.mkdir, (str(self.path),)

    def ran(self) -> bool:
        return self.path.exists()


@pytest.fixture
def pickled_code(tmp_path: Path) -> MakeDirectoryWhenUnpickled:
    """An object to pickle into a file: loading that file must never run it (``pickled_code.ran()``)."""
    return MakeDirectoryWhenUnpickled(tmp_path / "code-ran")


# -- reports -----------------------------------------------------------------------------
class ReportPage(HTMLParser):
    """What a person reads in a run's ``report.html``: each table by its id, as rows of cell texts
    (the header row first), each image's attributes, and every address the page would load."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text
        self.tables: dict[str, list[list[str]]] = {}
        self.images: list[dict[str, str]] = []
        self.addresses: list[str] = []
        self.ids: list[str] = []  # every element's id, in page order
        self._table: list[list[str]] | None = None
        self._cell: list[str] | None = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {key: value or "" for key, value in attrs}
        self.ids += [attributes["id"]] if "id" in attributes else []
        self.addresses += [attributes[key] for key in ("href", "src") if key in attributes]
        if tag == "img":
            self.images.append(attributes)
        elif tag == "table":
            self._table = self.tables.setdefault(attributes.get("id", ""), [])
        elif tag == "tr" and self._table is not None:
            self._table.append([])
        elif tag in ("td", "th") and self._table is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._table:
            self._table[-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)

    def table(self, table_id: str) -> list[list[str]]:
        """The rows of the table of that id, header row first; AssertionError naming it when there is none."""
        assert table_id in self.tables, f"the report has no table {table_id!r}, only {sorted(self.tables)}"
        return self.tables[table_id]

    def summary(self) -> dict[str, str]:
        """The summary table: each row's heading and value."""
        return {row[0]: row[1] for row in self.table("summary")[1:]}

    def confusion(self) -> tuple[list[str], list[list[int]]]:
        """(class names across, the counts: a row per true class, a column per predicted class)."""
        header, *rows = self.table("confusion")
        return header[1:], [[int(cell) for cell in row[1:]] for row in rows]


@pytest.fixture(scope="session")
def read_report() -> Callable[[Path], ReportPage]:
    """``read_report(run_folder)``: the run's ``report.html``, parsed (``ReportPage``)."""

    def read(folder: Path) -> ReportPage:
        page = Path(folder) / "report.html"
        assert page.is_file(), f"{folder} holds no report.html: {sorted(p.name for p in Path(folder).iterdir())}"
        return ReportPage(page.read_text(encoding="utf-8"))

    return read


# -- models ------------------------------------------------------------------------------
@pytest.fixture(params=available_models())
def model_name(request: pytest.FixtureRequest) -> str:
    """Every registered model in turn; the test id is the model's name."""
    return request.param


# The learning rate of the battery's short runs, where a model declares none.
BATTERY_LEARNING_RATE = 1e-2


@pytest.fixture
def learning_rate(model_name: str) -> float:
    """The learning rate of ``model_name``'s short runs: the one its registration declares, else 1e-2."""
    return model_recipe(model_name).get("learning_rate", BATTERY_LEARNING_RATE)


@pytest.fixture
def make_model(preprocessor: Preprocessor, device: torch.device) -> Callable[..., nn.Module]:
    """``make_model(name, **options)``: a tiny registered model sized for the embedded data, on ``device``
    (``num_classes=`` builds it for another number of classes)."""

    def make(name: str, *, num_classes: int | None = None, **options) -> nn.Module:
        if num_classes is not None:
            options["num_classes"] = num_classes
        model = build_for(name, preprocessor, **{**TINY_MODEL_OPTIONS, **options})
        return model.to(device)

    return make


@pytest.fixture
def tiny_model(model_name: str, make_model: Callable[..., nn.Module]) -> nn.Module:
    """A freshly initialised tiny instance of each registered model (built with the test's seed)."""
    return make_model(model_name)


@pytest.fixture
def predictor(tiny_model: nn.Module, preprocessor: Preprocessor, device: torch.device) -> Predictor:
    """Each registered model, untrained and tiny, with the fitted preprocessing: enough to test the plumbing
    (the integration tier's ``predictor`` serves its trained checkpoint instead)."""
    return Predictor(tiny_model, preprocessor, device)


@pytest.fixture
def any_predictor(make_model: Callable[..., nn.Module], preprocessor: Preprocessor, device: torch.device) -> Predictor:
    """A predictor around the first registered model, for checks that do not depend on the model."""
    return Predictor(make_model(available_models()[0]), preprocessor, device)
