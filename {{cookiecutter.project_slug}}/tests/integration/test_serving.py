"""Train, save, load, serve: the served model is the trained model, with the training preprocessing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from {{ cookiecutter.package_name }}.config import TrainConfig
from {{ cookiecutter.package_name }}.data import load_table, stratified_split
from {{ cookiecutter.package_name }}.data.schema import FEATURES
from {{ cookiecutter.package_name }}.inference import Predictor
from {{ cookiecutter.package_name }}.testing import assert_same_outputs, assert_state_dicts_equal
from {{ cookiecutter.package_name }}.training import load_checkpoint

pytestmark = pytest.mark.slow


@pytest.fixture
def test_rows(trained):
    config = TrainConfig.from_dict(load_checkpoint(trained.checkpoint_path)["config"])
    table = load_table(config.data)
    split = stratified_split(table[trained.preprocessor.target], config.val_fraction, config.test_fraction, config.seed)
    return table.iloc[split.test]


def test_loaded_checkpoint_reproduces_the_trained_model_exactly(trained, test_rows):
    predictor = Predictor.from_checkpoint(trained.checkpoint_path)
    assert_state_dicts_equal(trained.model.state_dict(), predictor.model.state_dict(), "served vs trained weights")
    features = torch.as_tensor(trained.preprocessor.transform(test_rows))
    assert_same_outputs(trained.model, predictor.model, features, "served vs trained logits")


def test_served_preprocessing_is_the_fitted_training_preprocessing(trained, test_rows):
    predictor = Predictor.from_checkpoint(trained.checkpoint_path)
    assert predictor.preprocessor.state == trained.preprocessor.state, "the checkpoint holds other statistics"
    served = predictor.features(test_rows[list(FEATURES)])
    assert np.array_equal(served, trained.preprocessor.transform(test_rows)), "train/serve skew in the features"


def test_served_accuracy_equals_the_accuracy_measured_in_training(trained, test_rows):
    served = Predictor.from_checkpoint(trained.checkpoint_path).score(test_rows)
    assert served["rows"] == trained.metrics["rows"]["test"]
    assert served["accuracy"] == pytest.approx(trained.metrics["test_accuracy"]), (
        f"served accuracy {served['accuracy']:.4f}, training reported {trained.metrics['test_accuracy']:.4f}"
    )


def test_batch_prediction_equals_one_by_one_prediction_for_a_trained_model(trained, test_rows):
    predictor = Predictor.from_checkpoint(trained.checkpoint_path)
    batch = predictor.predict(test_rows)
    for i, record in enumerate(test_rows[list(FEATURES)].to_dict(orient="records")):
        single = predictor.predict_record(record)
        assert single.label == batch["label"].iloc[i], (
            f"row {i}: {single.label} alone, {batch['label'].iloc[i]} in batch"
        )
        assert single.confidence == pytest.approx(batch["confidence"].iloc[i], abs=1e-6), f"row {i}"
