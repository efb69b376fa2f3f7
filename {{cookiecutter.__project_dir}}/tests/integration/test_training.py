"""Short runs of ``fit`` on the embedded data: the loss falls, every weight trains, files are written."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from {{ cookiecutter.package_name }}.checkpoint import REQUIRED_KEYS, load_checkpoint
from {{ cookiecutter.package_name }}.config import TrainConfig
from {{ cookiecutter.package_name }}.data import Preprocessor, load_examples
from {{ cookiecutter.package_name }}.inference import Predictor
from {{ cookiecutter.package_name }}.models import model_recipe
from {{ cookiecutter.package_name }}.testing import (
    TINY_MODEL_OPTIONS,
    assert_parameters_changed,
    assert_state_dicts_differ,
    assert_state_dicts_equal,
    snapshot_parameters,
)
from {{ cookiecutter.package_name }}.training import EpochRecord, fit, loop, split_examples

pytestmark = pytest.mark.slow


def test_a_short_run_drives_the_training_loss_down(model_name, quick_config):
    # About sixty steps (at least six epochs) at a brisk learning rate (1e-2, or the one the model
    # declares with its registration), without dropout. A correct model's loss falls, if not
    # smoothly: batch norm and attention make it jump from epoch to epoch, and a vision transformer
    # starts slowly. So one of the last two epochs must be 30% below the first and neither above it.
    # A dead optimiser (no step, a zero learning rate) leaves the loss near ln(classes); a gradient
    # sign error drives it up; labels that do not belong to their inputs keep it near ln(classes).
    config = quick_config(model=model_name, **{"learning_rate": 1e-2, "dropout": 0.0, **model_recipe(model_name)})
    examples = load_examples(config.data)
    split = split_examples(examples, config.val_fraction, config.test_fraction, config.seed)
    epochs = max(6, math.ceil(60 / math.ceil(len(split.train) / config.batch_size)))
    result = fit(replace(config, epochs=epochs), show_progress=False)
    losses = [round(record.train["loss"], 4) for record in result.history]
    assert len(losses) == epochs, f"history has {len(losses)} epochs, expected {epochs}"
    assert min(losses[-2:]) < 0.7 * losses[0], (
        f"training loss per epoch {losses}: neither of the last two is 30% below the first"
    )
    assert max(losses[-2:]) < losses[0], f"training loss per epoch {losses}: one of the last two is above the first"
    majority = max(np.unique(examples.labels[split.val], return_counts=True)[1]) / len(split.val)
    assert result.metrics["val_accuracy"] > majority, (
        f"validation accuracy {result.metrics['val_accuracy']:.3f} is no better than always answering the most "
        f"common class ({majority:.3f})"
    )


def test_an_epoch_of_fit_changes_every_trainable_parameter(model_name, tmp_path, quick_config):
    # keep="last": the weights of the second epoch, even where it scores worse than the first. A tiny
    # model: every parameter is there whatever the width.
    config = quick_config(model=model_name, keep="last", **TINY_MODEL_OPTIONS)
    one = fit(replace(config, epochs=1, output_dir=str(tmp_path / "one")))
    two = fit(replace(config, epochs=2, resume=str(one.checkpoint_path)))
    assert_parameters_changed(snapshot_parameters(one.model), two.model, what="the second epoch of fit")


def test_a_float64_run_trains_float64_weights_that_serve_from_the_checkpoint(quick_config):
    config = quick_config(epochs=1, precision="float64")
    result = fit(config)
    state = load_checkpoint(result.checkpoint_path).model_state
    floating = {name: t.dtype for name, t in state.items() if t.is_floating_point()}
    assert set(floating.values()) == {torch.float64}, f"weights of a float64 run are not all float64: {floating}"
    examples = load_examples(config.data)
    inputs = examples.subset(range(min(64, len(examples)))).read()
    served = Predictor.from_checkpoint(result.checkpoint_path).predict_proba(inputs)
    trained = Predictor(result.model, result.preprocessor).predict_proba(inputs)
    np.testing.assert_allclose(served, trained, atol=1e-5, err_msg="a float64 checkpoint serves other probabilities")


def test_same_seed_gives_the_same_weights_and_another_seed_does_not(tmp_path, quick_config):
    first = fit(quick_config(output_dir=str(tmp_path / "a")))
    second = fit(quick_config(output_dir=str(tmp_path / "b")))
    other = fit(quick_config(seed=1, output_dir=str(tmp_path / "c")))
    assert_state_dicts_equal(first.model.state_dict(), second.model.state_dict(), "weights of two seed-0 runs")
    assert first.history == second.history, "two seed-0 runs have different loss histories"
    assert_state_dicts_differ(first.model.state_dict(), other.model.state_dict(), "weights of seed-0 and seed-1 runs")


def test_preprocessing_is_fitted_on_the_training_split_only(trained):
    config = TrainConfig.from_dict(load_checkpoint(trained.checkpoint_path).config)
    examples = load_examples(config.data)
    split = split_examples(examples, config.val_fraction, config.test_fraction, config.seed)
    on_train = Preprocessor().fit(examples.subset(split.train)).state_dict()
    on_everything = Preprocessor().fit(examples).state_dict()
    assert trained.preprocessor.state_dict() == on_train, "fit() did not fit the preprocessing on the training split"
    assert on_train != on_everything, "the test needs fitted state that differs between train and the whole dataset"


@pytest.fixture
def best_epoch_first(monkeypatch):
    """Validation losses as if the first epoch were the best (10 lower than measured), and the
    weights after each epoch, as training offers them to be kept."""
    after_epoch = []
    offer = loop.KeptWeights.offer

    def scripted(self, model, epoch, val_loss):
        after_epoch.append({name: value.detach().clone() for name, value in model.state_dict().items()})
        offer(self, model, epoch, val_loss - 10.0 if epoch == 0 else val_loss)

    monkeypatch.setattr(loop.KeptWeights, "offer", scripted)
    return after_epoch


def test_a_run_keeps_scores_and_serves_the_weights_of_its_lowest_validation_loss(quick_config, best_epoch_first):
    result = fit(quick_config(epochs=3))
    checkpoint = load_checkpoint(result.checkpoint_path)
    assert result.metrics["kept_epoch"] == 1, f"kept epoch {result.metrics['kept_epoch']}, the best was epoch 1"
    first, last = best_epoch_first[0], best_epoch_first[-1]
    assert_state_dicts_equal(first, result.model.state_dict(), "the trained model against the best epoch's weights")
    assert_state_dicts_equal(first, checkpoint.model_state, "the checkpoint's served weights vs the best epoch's")
    assert_state_dicts_equal(last, checkpoint.resume_model_state, "the weights to resume from vs the last epoch's")
    assert result.metrics["val_loss"] == pytest.approx(result.history[0].val["loss"], rel=1e-6), (
        f"validation loss {result.metrics['val_loss']} reported, {result.history[0].val['loss']} in the kept epoch: "
        "the final scores are not of the kept weights"
    )
    assert result.metrics["train_loss"] == result.history[0].train["loss"], "train_loss is not the kept epoch's"


def test_keep_last_keeps_the_last_epochs_weights(quick_config, best_epoch_first):
    result = fit(quick_config(epochs=3, keep="last"))
    checkpoint = load_checkpoint(result.checkpoint_path)
    assert result.metrics["kept_epoch"] == 3, f"kept epoch {result.metrics['kept_epoch']} of 3 with keep=last"
    assert_state_dicts_equal(best_epoch_first[-1], checkpoint.model_state, "the checkpoint against the last epoch's")
    assert checkpoint.resume_model_state is None, "keep=last stores the same weights twice"


def test_fit_writes_a_complete_checkpoint_and_metrics(trained):
    checkpoint = load_checkpoint(trained.checkpoint_path)
    written = torch.load(trained.checkpoint_path, weights_only=True).keys()
    assert written >= REQUIRED_KEYS, f"checkpoint lacks {sorted(REQUIRED_KEYS - written)}"
    assert checkpoint.epoch == trained.metrics["epochs"] - 1, f"last epoch stored: {checkpoint.epoch}"
    assert [EpochRecord.from_dict(entry) for entry in checkpoint.history] == trained.history, (
        "the checkpoint's history does not read back as the run's epoch records"
    )
    metrics = json.loads((trained.checkpoint_path.parent / "metrics.json").read_text())
    for key in ("test_accuracy", "val_accuracy", "test_loss", "val_loss", "train_loss", "rows", "seed"):
        assert key in metrics, f"metrics.json lacks '{key}': {sorted(metrics)}"
    assert 0 <= metrics["test_accuracy"] <= 1
    rows = len(load_examples(load_checkpoint(trained.checkpoint_path).config["data"]))
    assert sum(metrics["rows"].values()) == rows, f"rows {metrics['rows']} do not add up to the data"


def test_a_run_under_test_prints_nothing(quick_config, capsys):
    fit(quick_config(epochs=1))
    captured = capsys.readouterr()
    assert captured.out == "", f"fit printed {captured.out!r} on stdout"
    assert captured.err == "", f"fit printed {captured.err!r} on stderr"
