"""Every setting of ``TrainConfig`` reaches what it controls, and the checkpoint records the value used.

A value dropped on the way (a function called with a literal, a default that shadows the
config) leaves a run that behaves exactly like the default one: nothing else fails.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from {{ cookiecutter.package_name }}.checkpoint import load_checkpoint
from {{ cookiecutter.package_name }}.config import TrainConfig
from {{ cookiecutter.package_name }}.data import load_examples
from {{ cookiecutter.package_name }}.testing import assert_state_dicts_equal
from {{ cookiecutter.package_name }}.training import fit, loop, split_examples

pytestmark = pytest.mark.slow


@pytest.fixture
def built(monkeypatch):
    """What ``fit`` asked the registry for, and the batch sizes the model saw in train mode."""
    seen: dict = {"options": None, "batches": []}
    real_build = loop.build_for

    def build(name, preprocessor, **options):
        model = real_build(name, preprocessor, **options)
        seen["name"], seen["options"] = name, options

        def record(module, args):
            if module.training:
                seen["batches"].append(len(args[0]))

        model.register_forward_pre_hook(record)
        return model

    monkeypatch.setattr(loop, "build_for", build)
    return seen


@pytest.fixture
def run(quick_data):
    """``run(folder, **settings)``: one epoch on the quick data with these settings; (config, result)."""

    def train(tmp_path, **settings):
        settings = {
            "epochs": 1,
            "device": "cpu",
            "data": quick_data,
            "output_dir": str(tmp_path / "run"),
            "report": False,
            **settings,
        }
        config = TrainConfig(**settings)
        return config, fit(config, show_progress=False)

    return train


def test_model_settings_reach_the_registry_and_the_checkpoint(tmp_path, built, run):
    defaults = TrainConfig()
    changed = {"hidden_size": defaults.hidden_size + 8, "depth": defaults.depth + 1, "dropout": 0.25}
    config, result = run(tmp_path, **changed)
    passed = {key: built["options"].get(key) for key in changed}
    assert passed == changed, f"fit built the model with {passed}, the config says {changed}"
    stored = load_checkpoint(result.checkpoint_path)
    assert stored.model_options == config.model_options(), f"checkpoint holds {stored.model_options}"
    assert stored.model_name == config.model == built["name"], (stored.model_name, built["name"])


def test_batch_size_sets_the_batches_the_model_trains_on(tmp_path, built, run):
    _, result = run(tmp_path, batch_size=16, dropout=0.0)
    train_rows = len(result.split.train)
    assert max(built["batches"]) <= 16, f"the model saw training batches of {sorted(set(built['batches']))} rows"
    assert max(built["batches"]) >= 15, f"batch_size 16 gave batches of at most {max(built['batches'])} rows"
    assert sum(built["batches"]) == train_rows, f"{sum(built['batches'])} rows seen in one epoch of {train_rows}"
    assert load_checkpoint(result.checkpoint_path).config["batch_size"] == 16


def test_optimiser_settings_reach_the_optimiser(tmp_path, run):
    _, result = run(tmp_path, learning_rate=0.0123, weight_decay=0.0456)
    groups = load_checkpoint(result.checkpoint_path).optimizer_state["param_groups"]
    for group in groups:
        assert group["lr"] == pytest.approx(0.0123), f"the optimiser ran with lr {group['lr']}, the config says 0.0123"
        assert group["weight_decay"] == pytest.approx(0.0456), f"weight decay {group['weight_decay']}, asked 0.0456"


def test_split_settings_and_seed_reach_the_split(tmp_path, run):
    config, result = run(tmp_path, val_fraction=0.25, test_fraction=0.1, seed=3)
    expected = split_examples(load_examples(config.data), 0.25, 0.1, 3)
    for part in ("train", "val", "test"):
        assert np.array_equal(getattr(result.split, part), getattr(expected, part)), (
            f"the {part} rows of the run are not those of val_fraction 0.25, test_fraction 0.1, seed 3"
        )
        assert result.metrics["rows"][part] == len(getattr(expected, part)), result.metrics["rows"]
    stored = load_checkpoint(result.checkpoint_path).config
    assert (stored["val_fraction"], stored["test_fraction"], stored["seed"]) == (0.25, 0.1, 3), stored


def test_the_seed_sets_the_initial_weights(tmp_path, run):
    def initial(seed: int) -> dict[str, torch.Tensor]:
        folder = tmp_path / f"{seed}-{len(list(tmp_path.iterdir()))}"  # a run folder is never reused
        _, result = run(folder, seed=seed, learning_rate=1e-12, weight_decay=0.0)
        return {k: v.clone() for k, v in result.model.state_dict().items()}

    first, again, other = initial(5), initial(5), initial(6)
    assert all(torch.equal(first[k], again[k]) for k in first), "seed 5 twice gave other initial weights"
    # Another seed draws another training split, and on a small dataset a vocabulary or a category
    # list fitted on it may differ in size: compare the weights whose shape the data does not set.
    comparable = [k for k in first if first[k].is_floating_point() and first[k].shape == other[k].shape]
    assert comparable, "no weight has the same shape under seeds 5 and 6"
    assert any(not torch.allclose(first[k], other[k]) for k in comparable), (
        "seeds 5 and 6 gave the same initial weights: the seed does not reach the model"
    )


def test_worker_processes_train_exactly_the_model_that_reading_in_process_trains(tmp_path, run, monkeypatch):
    # Workers live from epoch to epoch: the epoch must reach them (augmentation drawn per epoch),
    # and what they read and prepare must be what the training process would have.
    workers = []
    real = loop.make_loader

    def make_loader(*args, **kwargs):
        workers.append(kwargs.get("num_workers", 0))
        return real(*args, **kwargs)

    monkeypatch.setattr(loop, "make_loader", make_loader)
    _, inline = run(tmp_path / "inline", epochs=2, num_workers=0)
    assert set(workers) == {0}, f"num_workers 0 gave loaders of {workers} workers"
    workers.clear()
    _, parallel = run(tmp_path / "workers", epochs=2, num_workers=2)
    assert set(workers) == {2}, f"num_workers 2 gave loaders of {workers} workers"
    assert_state_dicts_equal(inline.model.state_dict(), parallel.model.state_dict(), "weights trained with 2 workers")
