"""Every registered model, trained by the project's loop and loss, memorises one small batch."""

from __future__ import annotations

import pytest

from {{ cookiecutter.package_name }}.testing import assert_overfits_batch

pytestmark = pytest.mark.slow


def test_training_drives_the_loss_on_one_fixed_batch_near_zero(tiny_model, tiny_batch):
    features, labels = tiny_batch
    assert_overfits_batch(tiny_model, features, labels, max_steps=400, target_loss=0.05)
