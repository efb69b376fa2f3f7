"""Resuming from a checkpoint continues the run exactly: k epochs + resume == the same run straight through."""

from __future__ import annotations

import pytest

from {{ cookiecutter.package_name }}.checkpoint import CheckpointError, load_checkpoint
from {{ cookiecutter.package_name }}.config import TrainConfig
from {{ cookiecutter.package_name }}.models import available_models
from {{ cookiecutter.package_name }}.testing import TINY_MODEL_OPTIONS, assert_state_dicts_equal
from {{ cookiecutter.package_name }}.training import fit, loop

pytestmark = pytest.mark.slow

EPOCHS, STOP_AFTER = 4, 2
DEFAULT_MODEL = TrainConfig().model


@pytest.fixture
def config(quick_config):
    def make(model_name: str, output_dir, **changes) -> TrainConfig:
        # Dropout on for every model, so that the random state has to be restored as well; tiny models
        # (resuming is exact or not whatever the width).
        settings = {"model": model_name, "dropout": 0.2, "seed": 3, "output_dir": str(output_dir)}
        return quick_config(**{**settings, **TINY_MODEL_OPTIONS, **changes})

    return make


def test_stopping_and_resuming_gives_the_weights_of_an_uninterrupted_run(model_name, tmp_path, config):
    straight = fit(config(model_name, tmp_path / "straight", epochs=EPOCHS))
    first = fit(config(model_name, tmp_path / "first", epochs=STOP_AFTER))
    resumed = fit(config(model_name, tmp_path / "resumed", epochs=EPOCHS, resume=str(first.checkpoint_path)))
    assert_state_dicts_equal(
        straight.model.state_dict(),
        resumed.model.state_dict(),
        f"weights after {EPOCHS} epochs straight vs {STOP_AFTER} + resume",
    )
    straight_optimizer = load_checkpoint(straight.checkpoint_path).optimizer_state["state"]
    resumed_optimizer = load_checkpoint(resumed.checkpoint_path).optimizer_state["state"]
    for index, state in straight_optimizer.items():
        assert_state_dicts_equal(state, resumed_optimizer[index], f"optimizer state of parameter {index}")
    assert resumed.history == straight.history, "the loss history of the resumed run differs"


def test_resuming_past_a_kept_epoch_goes_on_from_the_last_weights(tmp_path, config, monkeypatch):
    # The first epoch scores best, so the checkpoint after two serves the first epoch's weights; training
    # must go on from the second's, as the uninterrupted run does.
    offer = loop.KeptWeights.offer
    monkeypatch.setattr(
        loop.KeptWeights, "offer", lambda self, model, epoch, loss: offer(self, model, epoch, loss - 10 * (epoch == 0))
    )
    straight = fit(config(DEFAULT_MODEL, tmp_path / "straight", epochs=EPOCHS))
    first = fit(config(DEFAULT_MODEL, tmp_path / "first", epochs=STOP_AFTER))
    assert load_checkpoint(first.checkpoint_path).kept_epoch == 0, "the test needs a kept epoch before the last"
    resumed = fit(config(DEFAULT_MODEL, tmp_path / "resumed", epochs=EPOCHS, resume=str(first.checkpoint_path)))
    assert resumed.history == straight.history, (
        "the resumed run's losses differ from the uninterrupted run's: it went on from other weights than the last"
    )
    assert_state_dicts_equal(straight.model.state_dict(), resumed.model.state_dict(), "kept weights straight/resumed")
    assert resumed.metrics["kept_epoch"] == straight.metrics["kept_epoch"] == 1


def test_resuming_keeps_the_stored_settings(model_name, tmp_path, config):
    first = fit(config(model_name, tmp_path / "first", epochs=1))
    others = [name for name in available_models() if name != model_name]
    other_model = others[0] if others else model_name
    resumed = fit(config(other_model, tmp_path / "resumed", epochs=2, seed=99, resume=str(first.checkpoint_path)))
    stored = load_checkpoint(resumed.checkpoint_path).config
    assert (stored["model"], stored["seed"]) == (model_name, 3), f"resumed run changed its settings: {stored}"


def test_resuming_a_run_that_already_has_the_epochs_is_an_error(tmp_path, config):
    first = fit(config(DEFAULT_MODEL, tmp_path / "first", epochs=2))
    with pytest.raises(CheckpointError, match="already holds 2 epochs"):
        fit(config(DEFAULT_MODEL, tmp_path / "again", epochs=2, resume=str(first.checkpoint_path)))
