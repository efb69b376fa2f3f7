"""Contracts every registered model keeps. Each test runs once per model in the registry.

The contracts that take optimiser steps are in ``tests/integration/test_training_steps.py``.
"""

from __future__ import annotations

import pytest
import torch

from {{ cookiecutter.package_name }}.models import (
    available_models,
    build_model,
    frozen_parameters,
    model_recipe,
    register_model,
)
from {{ cookiecutter.package_name }}.testing import (
    assert_batch_independent,
    assert_eval_deterministic,
    assert_finite,
    assert_gradients_flow,
    assert_logits_shape,
    assert_returns_logits,
    assert_running_statistics_average_the_batches,
    assert_train_stochastic,
)


@pytest.mark.parametrize("batch_size", [2, 5, 24])
def test_output_is_one_row_of_class_scores_per_input_row(tiny_model, tiny_batch, preprocessor, batch_size):
    """Also catches a model that flattens or pools over the batch dimension."""
    features, _ = tiny_batch
    rows = torch.cat([features] * -(-batch_size // len(features)))[:batch_size]  # the tiny batch may be smaller
    for training in (True, False):
        tiny_model.train(training)
        with torch.no_grad():
            logits = tiny_model(rows)
        assert_logits_shape(logits, batch_size, len(preprocessor.classes))


def test_every_parameter_trains_unless_the_model_declares_it_frozen(model_name, tiny_model):
    # A block left frozen by mistake (requires_grad=False) trains nothing and fails no other check.
    declared = frozen_parameters(model_name)
    frozen = [name for name, parameter in tiny_model.named_parameters() if not parameter.requires_grad]
    undeclared = [name for name in frozen if not (declared and name.startswith(declared))]
    assert not undeclared, (
        f"{model_name}: {undeclared[:8]} do not train (requires_grad=False) and the model does not declare them "
        "frozen: unfreeze them, or register the model with frozen=(<the start of their names>, ...)"
    )
    unused = [prefix for prefix in declared if not any(name.startswith(prefix) for name in frozen)]
    assert not unused, f"{model_name} declares {unused} frozen, but no frozen parameter's name starts so"


def test_batch_norm_running_statistics_average_the_batches_not_follow_the_last(tiny_model, tiny_batch):
    features, _ = tiny_batch
    assert_running_statistics_average_the_batches(tiny_model, features)  # no batch norm: nothing to check


def test_a_single_row_can_be_scored_in_eval_mode(tiny_model, tiny_batch, preprocessor):
    features, _ = tiny_batch
    tiny_model.eval()
    with torch.no_grad():
        logits = tiny_model(features[:1])
    assert_logits_shape(logits, 1, len(preprocessor.classes))
    assert_finite(logits, "logits of a single row")


def test_outputs_are_finite(tiny_model, tiny_batch):
    features, _ = tiny_batch
    for training in (True, False):
        tiny_model.train(training)
        with torch.no_grad():
            assert_finite(tiny_model(features), f"logits in {'train' if training else 'eval'} mode")


def test_outputs_are_finite_for_extreme_inputs(tiny_model, extreme_inputs):
    inputs, description = extreme_inputs
    tiny_model.eval()
    with torch.no_grad():
        assert_finite(tiny_model(inputs), f"logits for {description}")


def test_every_parameter_receives_a_finite_nonzero_gradient(tiny_model, tiny_batch):
    features, labels = tiny_batch
    assert_gradients_flow(tiny_model, features, labels)


def test_model_returns_logits_not_probabilities(tiny_model, tiny_batch):
    features, _ = tiny_batch
    assert_returns_logits(tiny_model, features)


def test_eval_mode_is_deterministic(model_name, make_model, tiny_batch):
    features, _ = tiny_batch
    assert_eval_deterministic(make_model(model_name, dropout=0.5), features)


def test_train_mode_is_stochastic_when_built_with_dropout(model_name, make_model, tiny_batch):
    features, _ = tiny_batch
    assert_train_stochastic(make_model(model_name, dropout=0.5), features)


@pytest.mark.parametrize("row", [0, 13])
def test_rows_of_a_batch_are_independent_in_eval_mode(tiny_model, tiny_batch, row):
    features, _ = tiny_batch
    # Move train-mode statistics (batch-norm running averages) away from their initial values first.
    tiny_model.train()
    with torch.no_grad():
        for _ in range(3):
            tiny_model(features)
    assert_batch_independent(tiny_model, features, index=row)


def test_building_an_unknown_model_names_the_registered_ones():
    with pytest.raises(ValueError, match="unknown model 'no-such-model'") as raised:
        build_model("no-such-model", num_classes=3)
    for name in available_models():
        assert name in str(raised.value), f"'{name}' missing from the error message: {raised.value}"


def test_a_name_cannot_be_registered_twice():
    name = available_models()[0]
    with pytest.raises(ValueError, match=f"'{name}' is already registered"):
        register_model(name)(torch.nn.Identity)
    assert available_models().count(name) == 1


def test_a_recipe_is_kept_with_the_registration_and_unknown_settings_are_refused(monkeypatch):
    from {{ cookiecutter.package_name }}.models import registry

    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.setattr(registry, "_RECIPES", dict(registry._RECIPES))
    register_model("recipe-probe", learning_rate=3e-3)(torch.nn.Identity)
    assert model_recipe("recipe-probe") == {"learning_rate": 3e-3}
    with pytest.raises(ValueError, match=r"unknown recipe setting\(s\) \['lr'\]"):
        register_model("typo-probe", lr=3e-3)
    assert "typo-probe" not in available_models()
    with pytest.raises(ValueError, match="unknown model 'no-such-model'"):
        model_recipe("no-such-model")
