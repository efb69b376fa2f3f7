"""Short training runs shared by the integration tests (each is trained once per session)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.config import TrainConfig
from {{ cookiecutter.package_name }}.data import write_examples
from {{ cookiecutter.package_name }}.inference import Predictor
from {{ cookiecutter.package_name }}.training import TrainResult, fit

QUICK = {"epochs": 3, "seed": 0, "device": "cpu"}


@pytest.fixture
def quick_config(tmp_path: Path, quick_data: str | None) -> Callable[..., TrainConfig]:
    """``quick_config(**changes)``: a short seeded CPU run on ``quick_data``, writing under ``tmp_path``.

    Without the report (about a second of drawing a run): ``trained`` and ``test_report.py`` check it.
    """

    def make(**changes) -> TrainConfig:
        settings = {
            "epochs": 2,
            "seed": 0,
            "device": "cpu",
            "data": quick_data,
            "output_dir": str(tmp_path / "run"),
            "report": False,
        }
        return TrainConfig(**{**settings, **changes})

    return make


@pytest.fixture
def request_csv(tmp_path: Path, embedded_examples, split) -> Path:
    """Ten held-out examples, written in the task's own format the way a user would hand them over."""
    return write_examples(embedded_examples.subset(split.test[:10]), tmp_path / "requests.csv")


@pytest.fixture
def assert_one_line_error(capsys: pytest.CaptureFixture[str]) -> Callable[..., None]:
    """``assert_one_line_error(*mentions)``: stderr holds exactly one ``error: ...`` line naming each of them."""

    def check(*mentions: str) -> None:
        err = capsys.readouterr().err
        lines = err.strip().splitlines()
        assert len(lines) == 1, f"expected one line on stderr, got {err!r}"
        assert lines[0].startswith("error: "), f"expected 'error: ...', got {err!r}"
        for text in mentions:
            assert text in lines[0], f"the error line does not mention {text!r}: {lines[0]}"

    return check


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory, quick_data: str | None) -> TrainResult:
    """The default model trained for a few epochs on ``quick_data``, with its checkpoint and report on disk."""
    output_dir = tmp_path_factory.mktemp("trained")
    return fit(TrainConfig(**QUICK, data=quick_data, output_dir=str(output_dir)), show_progress=False)


@pytest.fixture(scope="module")
def predictor(trained: TrainResult) -> Predictor:
    """The trained run's checkpoint, served (it stands in for the unit tier's untrained ``predictor``)."""
    return Predictor.from_checkpoint(trained.checkpoint_path)
