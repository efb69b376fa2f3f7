"""Train, save, load, serve: the served model is the trained model, with the training preprocessing."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

import {{ cookiecutter.package_name }} as package
from {{ cookiecutter.package_name }}.checkpoint import load_checkpoint
from {{ cookiecutter.package_name }}.config import TrainConfig
from {{ cookiecutter.package_name }}.data import load_examples
from {{ cookiecutter.package_name }}.inference import Predictor
from {{ cookiecutter.package_name }}.testing import assert_same_outputs, assert_state_dicts_equal
from {{ cookiecutter.package_name }}.training import classification_loss, split_examples

pytestmark = pytest.mark.slow


@pytest.fixture
def test_examples(trained):
    """The test split of the trained run, found again from the settings stored in its checkpoint."""
    config = TrainConfig.from_dict(load_checkpoint(trained.checkpoint_path).config)
    examples = load_examples(config.data)
    split = split_examples(examples, config.val_fraction, config.test_fraction, config.seed)
    return examples.subset(split.test)


def test_serving_and_the_cli_import_nothing_of_training():
    # The checkpoint has its own module: predicting, evaluating and serving read it without importing the
    # training loop, its report or run folders (nor what they import), and a change there cannot reach serving.
    code = (
        f"import sys, {package.__name__}.cli, {package.__name__}.inference.predictor; "
        f"print(sorted(m for m in sys.modules if m.startswith('{package.__name__}.training')))"
    )
    imported = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert imported == "[]", f"serving imports training: {imported}"


def training_inputs(preprocessor, examples) -> torch.Tensor:
    """The inputs the training loop scores for these examples (its evaluation dataset, one batch)."""
    dataset = preprocessor.dataset(examples, train=False)
    return preprocessor.collate([dataset[i] for i in range(len(dataset))])[0]


def test_loaded_checkpoint_reproduces_the_trained_model_exactly(trained, test_examples):
    predictor = Predictor.from_checkpoint(trained.checkpoint_path)
    assert_state_dicts_equal(trained.model.state_dict(), predictor.model.state_dict(), "served vs trained weights")
    inputs = training_inputs(trained.preprocessor, test_examples)
    assert_same_outputs(trained.model, predictor.model, inputs, "served vs trained logits")


def test_served_preprocessing_is_the_fitted_training_preprocessing(trained, test_examples):
    predictor = Predictor.from_checkpoint(trained.checkpoint_path)
    assert predictor.preprocessor.state_dict() == trained.preprocessor.state_dict(), "the checkpoint holds other state"
    served = predictor.features(test_examples.read())
    trained_on = training_inputs(trained.preprocessor, test_examples)
    assert torch.equal(served, trained_on), "train/serve skew in the model inputs"


def test_serving_feeds_the_model_what_training_would_for_inputs_unlike_the_training_ones(trained, unlike_training):
    # The embedded data never holds them, so no other test sends them: serving must still give the
    # model exactly the inputs training's own reading would (truncated, converted, resized alike).
    examples, what = unlike_training
    served = Predictor.from_checkpoint(trained.checkpoint_path).features(examples.read())
    trained_on = training_inputs(trained.preprocessor, examples)
    assert served.shape == trained_on.shape, (
        f"{what}: served inputs {tuple(served.shape)}, training's {tuple(trained_on.shape)}"
    )
    assert torch.equal(served, trained_on), f"train/serve skew on {what}: the model inputs differ"


def test_served_accuracy_equals_the_accuracy_measured_in_training(trained, test_examples):
    served = Predictor.from_checkpoint(trained.checkpoint_path).score(test_examples)
    assert served["rows"] == trained.metrics["rows"]["test"]
    assert served["accuracy"] == pytest.approx(trained.metrics["test_accuracy"]), (
        f"served accuracy {served['accuracy']:.4f}, training reported {trained.metrics['test_accuracy']:.4f}"
    )


@pytest.mark.parametrize("part", ["val", "test"])
def test_each_reported_metric_is_measured_on_its_own_split(trained, part):
    # A loss and an accuracy measured on the wrong loader (validation on the training rows, test on
    # the validation rows) still look plausible; recomputed on the split itself, they differ.
    config = TrainConfig.from_dict(load_checkpoint(trained.checkpoint_path).config)
    examples = load_examples(config.data)
    split = split_examples(examples, config.val_fraction, config.test_fraction, config.seed)
    rows = examples.subset(getattr(split, part))
    predictor = Predictor.from_checkpoint(trained.checkpoint_path)
    with torch.no_grad():
        logits = predictor.model(predictor.features(rows.read()))
    labels = torch.tensor(predictor.preprocessor.encode_labels(rows.labels))
    loss = classification_loss()(logits, labels).item()
    accuracy = (logits.argmax(dim=1) == labels).double().mean().item()
    metrics = trained.metrics
    assert metrics["rows"][part] == len(rows), (
        f"{part}: {metrics['rows'][part]} rows reported, the split has {len(rows)}"
    )
    assert metrics[f"{part}_loss"] == pytest.approx(loss, rel=1e-5), (
        f"reported {part}_loss {metrics[f'{part}_loss']:.6f}, measured on the {part} split {loss:.6f}: "
        "the metric is computed on other rows"
    )
    assert metrics[f"{part}_accuracy"] == pytest.approx(accuracy), (
        f"reported {part}_accuracy {metrics[f'{part}_accuracy']:.4f}, measured on the {part} split {accuracy:.4f}"
    )
    if part == "val":  # the kept epoch's validation, in the history, scored the same model on the same rows
        kept = trained.history[metrics["kept_epoch"] - 1]
        assert kept.val["loss"] == pytest.approx(loss, rel=1e-5), (
            f"the kept epoch's val_loss {kept.val['loss']:.6f} differs from the validation split's {loss:.6f}"
        )


def test_batch_prediction_equals_one_by_one_prediction_for_a_trained_model(trained, test_examples):
    predictor = Predictor.from_checkpoint(trained.checkpoint_path)
    inputs = test_examples.read()
    batch = predictor.predict(inputs)
    items = inputs.to_dict(orient="records") if hasattr(inputs, "columns") else list(inputs)
    for i, item in enumerate(items):
        single = predictor.predict_one(item)
        assert single.label == batch["label"].iloc[i], (
            f"row {i}: {single.label} alone, {batch['label'].iloc[i]} in batch"
        )
        assert single.confidence == pytest.approx(batch["confidence"].iloc[i], abs=1e-6), f"row {i}"
