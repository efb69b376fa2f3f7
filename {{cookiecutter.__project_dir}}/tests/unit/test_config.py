"""The typed training configuration: defaults that work, bad values refused together."""

from __future__ import annotations

import pytest
import torch

from {{ cookiecutter.package_name }}.cli import build_parser
from {{ cookiecutter.package_name }}.config import TrainConfig
from {{ cookiecutter.package_name }}.data import INPUT_SIZE, TRAINING_DEFAULTS
from {{ cookiecutter.package_name }}.models import available_models, build_model, registry
from {{ cookiecutter.package_name }}.training.loader import MAX_WORKERS, worker_count


def test_defaults_are_valid_and_name_a_registered_model():
    config = TrainConfig()
    assert config.model in available_models()


def test_a_models_registered_recipe_sets_what_it_names_unless_the_setting_is_given(monkeypatch):
    for table in ("_REGISTRY", "_RECIPES", "_FROZEN"):
        monkeypatch.setattr(registry, table, dict(getattr(registry, table)))
    registry.register_model("recipe-probe", learning_rate=0.0123, batch_size=48)(torch.nn.Identity)
    config = TrainConfig(model="recipe-probe")
    assert (config.learning_rate, config.batch_size) == (0.0123, 48), (
        f"learning rate {config.learning_rate}, batch size {config.batch_size}: `train --model` ignores the "
        "recipe the model registered with (0.0123, 48)"
    )
    assert config.weight_decay == TRAINING_DEFAULTS["weight_decay"], "a setting the recipe leaves out: the task's"
    given = TrainConfig(model="recipe-probe", learning_rate=0.5, batch_size=8)
    assert (given.learning_rate, given.batch_size) == (0.5, 8), "a setting given on the command line must win"
    parsed = vars(build_parser().parse_args(["train", "--model", "recipe-probe"]))
    from_cli = TrainConfig(**{name: parsed[name] for name in TrainConfig.__dataclass_fields__})
    assert from_cli.batch_size == 48, "`train --model` without --batch-size does not take the recipe's"


def test_every_registered_model_accepts_the_config_options(model_name, preprocessor):
    options = TrainConfig(model=model_name).model_options()
    build_model(model_name, num_classes=3, **preprocessor.model_inputs(), **options)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"model": "no-such-model"}, "not registered"),
        ({"epochs": 0}, "epochs must be at least 1"),
        ({"batch_size": -1}, "batch_size must be at least 1"),
        ({"dropout": 1.0}, "dropout"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"weight_decay": -1e-3}, "weight_decay"),
        ({"val_fraction": 0.6, "test_fraction": 0.5}, "val_fraction and test_fraction"),
        ({"num_workers": -2}, "num_workers"),
        ({"input_size": -1}, "input_size"),
        ({"device": "tpu"}, "device"),
        ({"precision": "float16"}, "precision must be one of float32, float64"),
        ({"precision": "float64", "amp": True}, "amp"),
        ({"keep": "first"}, "keep must be one of best, last"),
    ],
    ids=lambda value: "-".join(value) if isinstance(value, dict) else None,
)
def test_an_invalid_setting_is_refused_naming_it(changes, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**changes)


def test_every_problem_is_reported_at_once():
    with pytest.raises(ValueError, match=r"epochs.*batch_size"):
        TrainConfig(epochs=0, batch_size=0)


def test_config_round_trips_through_a_dict_and_ignores_unknown_keys():
    config = TrainConfig(epochs=3, seed=9, model=available_models()[-1])
    assert TrainConfig.from_dict({**config.to_dict(), "from_a_newer_version": 1}) == config


def test_a_run_from_train_writes_its_report_unless_told_not_to():
    assert TrainConfig().report, "the default run writes no report"
    assert build_parser().parse_args(["train"]).report is True, "`train` writes no report by default"
    assert build_parser().parse_args(["train", "--no-report"]).report is False, "--no-report still writes one"


@pytest.mark.skipif(INPUT_SIZE is not None, reason="this task lets the user choose its input size")
def test_an_input_size_is_refused_where_the_data_fixes_it():
    with pytest.raises(ValueError, match="input_size 32: this task takes its input size from the data"):
        TrainConfig(input_size=32)


@pytest.mark.skipif(INPUT_SIZE is None, reason="the data fixes this task's input size")
def test_the_input_size_reaches_the_preprocessing_and_the_command_line():
    assert TrainConfig(input_size=24).preprocessing_options() == {"input_size": 24}
    assert build_parser().parse_args(["train", "--input-size", "24"]).input_size == 24


@pytest.mark.parametrize(
    ("cpus", "processes", "expected"),
    [(1, 1, 0), (2, 1, 0), (4, 1, 2), (8, 2, 2), (16, 4, 2), (64, 1, MAX_WORKERS)],
)
def test_the_automatic_worker_count_leaves_each_training_process_two_cpus(monkeypatch, cpus, processes, expected):
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(cpus)), raising=False)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", str(processes))
    assert worker_count(-1) == expected, f"{cpus} CPUs, {processes} processes: {worker_count(-1)} workers"
    assert worker_count(3) == 3, "a worker count asked for is not the one used"
