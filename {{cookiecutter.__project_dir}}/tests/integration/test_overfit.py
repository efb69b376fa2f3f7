"""Every registered model, trained by the project's loop and loss, memorises one small batch."""

from __future__ import annotations

import pytest
from torch import nn

from {{ cookiecutter.package_name }}.testing import assert_overfits_batch

pytestmark = pytest.mark.slow


def test_training_drives_the_loss_on_one_fixed_batch_near_zero(tiny_model, tiny_batch):
    features, labels = tiny_batch
    assert_overfits_batch(tiny_model, features, labels, max_steps=400, target_loss=0.05)


def test_the_overfit_check_fails_for_a_model_that_returns_probabilities(tiny_model, tiny_batch):
    # Cross-entropy on probabilities cannot fall much below 0.55: the check must say so, not pass.
    features, labels = tiny_batch
    with pytest.raises(AssertionError, match=f"could not overfit one fixed batch of {len(labels)} rows"):
        assert_overfits_batch(nn.Sequential(tiny_model, nn.Softmax(dim=1)), features, labels, max_steps=50)
