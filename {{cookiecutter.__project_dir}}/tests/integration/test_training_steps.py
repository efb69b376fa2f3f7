"""Contracts that take optimiser steps, for every registered model, and deterministic mode.

Each test takes milliseconds, yet they belong to this tier: the first optimiser a process
builds (and the first switch to deterministic mode) makes torch import its compiler stack,
torch._dynamo, which takes seconds. The unit tier never builds an optimiser.
"""

from __future__ import annotations

import os
import re

import pytest
import torch

from {{ cookiecutter.package_name }}.testing import (
    assert_seed_reproducible,
    assert_step_updates_every_parameter,
    trainable_parameters,
)
from {{ cookiecutter.package_name }}.training import (
    classification_loss,
    deterministic_mode,
    seed_everything,
    train_one_epoch,
)

pytestmark = pytest.mark.slow


class GradientRecorder(torch.optim.SGD):
    """SGD with learning rate 0 that records the gradients it is asked to apply."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.names = [name for name, _ in model.named_parameters()]
        super().__init__(model.parameters(), lr=0.0)
        self.seen: list[dict[str, torch.Tensor]] = []

    def step(self, closure=None):
        parameters = [p for group in self.param_groups for p in group["params"]]
        self.seen.append(
            {
                name: p.grad.detach().clone()
                for name, p in zip(self.names, parameters, strict=True)
                if p.grad is not None
            }
        )
        return super().step(closure)


def test_one_optimiser_step_changes_every_parameter(tiny_model, tiny_batch):
    features, labels = tiny_batch
    optimizer = torch.optim.AdamW(tiny_model.parameters(), lr=1e-3)
    assert_step_updates_every_parameter(tiny_model, optimizer, features, labels)


def test_the_step_check_names_the_parameters_left_out_of_the_optimiser(tiny_model, tiny_batch):
    features, labels = tiny_batch
    names = list(trainable_parameters(tiny_model))
    left_out = names[:2]
    optimizer = torch.optim.AdamW([p for name, p in tiny_model.named_parameters() if name not in left_out], lr=1e-3)
    with pytest.raises(AssertionError, match=rf"2 of {len(names)} .*{re.escape(', '.join(left_out))}"):
        assert_step_updates_every_parameter(tiny_model, optimizer, features, labels)


def test_every_step_starts_from_fresh_gradients(model_name, make_model, tiny_batch):
    # Same batch twice, weights frozen (lr 0), no dropout: both steps must see the same gradient.
    # Gradients left from the first step (a missing zero_grad) would double the second.
    features, labels = tiny_batch
    model = make_model(model_name, dropout=0.0)
    optimizer = GradientRecorder(model)
    train_one_epoch(model, [(features, labels)] * 2, classification_loss(), optimizer, features.device)
    assert len(optimizer.seen) == 2, f"the optimiser stepped {len(optimizer.seen)} times for 2 batches"
    first, second = optimizer.seen
    assert first, "the first step saw no gradient at all"
    for name, a in first.items():
        b = second[name]
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-7), (
            f"'{name}': the second step's gradient is {(b.norm() / a.norm()).item():.3f} times the first; "
            "gradients accumulate across steps (zero_grad missing?)"
        )


def test_epoch_loss_is_the_mean_over_rows_whatever_the_batch_sizes(model_name, make_model, tiny_batch):
    features, labels = tiny_batch
    model = make_model(model_name, dropout=0.0).eval()
    cut = len(labels) * 5 // 6  # batches of unequal sizes (24 rows: 20 then 4), neither empty
    assert 0 < cut < len(labels), f"the tiny batch has {len(labels)} rows: too few for two batches"
    batches = [(features[:cut], labels[:cut]), (features[cut:], labels[cut:])]
    loss_fn = classification_loss()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    reported = train_one_epoch(model, batches, loss_fn, optimizer, features.device)["loss"]
    model.train()
    with torch.no_grad():
        by_row = sum(loss_fn(model(x), y).item() * len(y) for x, y in batches) / len(labels)
    assert reported == pytest.approx(by_row, rel=1e-5), f"epoch loss {reported}, mean over rows {by_row}"


def test_train_one_epoch_leaves_the_model_in_train_mode(tiny_model, tiny_batch):
    features, labels = tiny_batch
    tiny_model.eval()
    optimizer = torch.optim.SGD(tiny_model.parameters(), lr=1e-3)
    train_one_epoch(tiny_model, [(features, labels)], classification_loss(), optimizer, features.device)
    assert tiny_model.training, "train_one_epoch did not put the model in train mode"


def test_same_seed_gives_same_weights_and_outputs_and_another_seed_does_not(model_name, make_model, tiny_batch):
    features, labels = tiny_batch

    def run(seed: int) -> torch.nn.Module:
        seed_everything(seed)
        model = make_model(model_name, dropout=0.3)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
        train_one_epoch(model, [(features, labels)] * 3, classification_loss(), optimizer, features.device)
        return model

    assert_seed_reproducible(run, features)


def test_deterministic_mode_turns_on_deterministic_kernels_and_restores_everything():
    before = (
        torch.are_deterministic_algorithms_enabled(),
        torch.backends.cudnn.benchmark,
        os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
    )
    with deterministic_mode(True):
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.backends.cudnn.deterministic
        assert not torch.backends.cudnn.benchmark
        assert os.environ.get("CUBLAS_WORKSPACE_CONFIG"), "CUBLAS_WORKSPACE_CONFIG is not set for CUDA determinism"
    after = (
        torch.are_deterministic_algorithms_enabled(),
        torch.backends.cudnn.benchmark,
        os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
    )
    assert after == before, f"deterministic_mode left {after}, found {before}"


def test_deterministic_mode_restores_the_settings_after_an_error():
    before = torch.are_deterministic_algorithms_enabled()
    try:
        with deterministic_mode(True):
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert torch.are_deterministic_algorithms_enabled() == before
