"""Benchmarks of the hot paths, for the task's default model: not a test tier.

Run by ``nox -s benchmark`` (pytest-benchmark), which compares each run with a recorded
baseline and fails when one got slower than the session's threshold; see the README's
"Benchmarks". The model is freshly initialised, not trained: its speed is the same.
Sizes are those of serving: one item, and a batch of ``BATCH`` items; the Predictor is timed
side by side with the model run by torch (``[torch]``) and exported to ONNX and run by ONNX
Runtime (``[onnx]``, what ``--backend onnx`` serves).
"""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from {{ cookiecutter.package_name }}.checkpoint import Checkpoint, save_checkpoint
from {{ cookiecutter.package_name }}.config import TrainConfig
from {{ cookiecutter.package_name }}.data import Preprocessor, load_examples
from {{ cookiecutter.package_name }}.export import export_checkpoint
from {{ cookiecutter.package_name }}.inference import Predictor
from {{ cookiecutter.package_name }}.inference.exported import ExportedPredictor
from {{ cookiecutter.package_name }}.models import build_for
from {{ cookiecutter.package_name }}.training import split_examples

BATCH = 256


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    """The default model and preprocessing of ``train``, fitted on the embedded training split."""
    config = TrainConfig()
    examples = load_examples(config.data)
    split = split_examples(examples, config.val_fraction, config.test_fraction, config.seed)
    preprocessor = Preprocessor().fit(examples.subset(split.train))
    torch.manual_seed(config.seed)
    model = build_for(config.model, preprocessor, **config.model_options())
    return Predictor(model, preprocessor)


@pytest.fixture(scope="module")
def batch():
    """``BATCH`` raw inputs (a table's rows, images, texts) of the embedded data, repeated if it has fewer."""
    inputs = load_examples(TrainConfig().data).read()
    repeats = -(-BATCH // len(inputs))
    rows = [i % len(inputs) for i in range(BATCH * repeats)][:BATCH]
    return inputs.iloc[rows]


def test_preprocessing_a_batch(benchmark, predictor: Predictor, batch) -> None:
    features = benchmark(predictor.preprocessor.prepare, batch)
    assert len(features) == BATCH


def test_forward_pass_of_a_batch(benchmark, predictor: Predictor, batch) -> None:
    features = predictor.preprocessor.prepare(batch)
    model = predictor.model.eval()

    def forward() -> torch.Tensor:
        with torch.inference_mode():
            return model(features)

    assert benchmark(forward).shape == (BATCH, len(predictor.classes))


@pytest.fixture(scope="module")
def exported(predictor: Predictor, tmp_path_factory: pytest.TempPathFactory) -> ExportedPredictor:
    """``predictor``'s model exported as ``export`` does it, run by ONNX Runtime."""
    config = TrainConfig()
    checkpoint = Checkpoint(
        model_name=config.model,
        model_options=config.model_options(),
        model_state=predictor.model.state_dict(),
        preprocessor=predictor.preprocessor.state_dict(),
        config=config.to_dict(),
        epoch=0,
    )
    path = save_checkpoint(checkpoint, tmp_path_factory.mktemp("run") / "checkpoint.pt")
    return ExportedPredictor(export_checkpoint(path).folder, checkpoint=path)


@pytest.fixture(params=["torch", "onnx"])
def served(request: pytest.FixtureRequest, predictor: Predictor) -> Predictor:
    """The Predictor as each backend runs it."""
    return predictor if request.param == "torch" else request.getfixturevalue("exported")


def test_predictor_on_one_item(benchmark, served: Predictor, batch) -> None:
    item = batch.iloc[0]
    item = item.to_dict() if isinstance(batch, pd.DataFrame) else item  # a record, an image, a text
    prediction = benchmark(served.predict_one, item)
    assert prediction.label in served.classes


def test_predictor_on_a_batch(benchmark, served: Predictor, batch) -> None:
    probabilities = benchmark(served.predict_proba, batch)
    assert probabilities.shape == (BATCH, len(served.classes))
