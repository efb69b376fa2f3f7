"""The command line, run in-process: train, predict and evaluate; bad input is exit status 2 and one line."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from {{ cookiecutter.package_name }} import cli
from {{ cookiecutter.package_name }}.data import load_table
from {{ cookiecutter.package_name }}.data.schema import FEATURES

pytestmark = pytest.mark.slow


@pytest.fixture
def request_csv(tmp_path):
    """Ten unlabelled rows, written the way a user would hand them over."""
    path = tmp_path / "requests.csv"
    load_table()[list(FEATURES)].sample(10, random_state=0).to_csv(path, index=False)
    return path


def assert_one_line_error(capsys, *mentions: str) -> None:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {err!r}"
    assert lines[0].startswith("error: "), f"expected 'error: ...', got {err!r}"
    for text in mentions:
        assert text in lines[0], f"the error line does not mention {text!r}: {lines[0]}"


def test_train_writes_a_checkpoint_and_metrics_and_reports_accuracy(tmp_path, capsys):
    output_dir = tmp_path / "run"
    assert cli.main(["train", "--epochs", "2", "--output-dir", str(output_dir), "--no-progress"]) == 0
    assert (output_dir / "checkpoint.pt").is_file()
    metrics = json.loads((output_dir / "metrics.json").read_text())
    assert metrics["epochs"] == 2
    out = capsys.readouterr().out
    assert "test accuracy" in out, f"train printed {out!r}"


def test_predict_writes_a_label_and_a_confidence_for_every_row(trained, request_csv, tmp_path, capsys):
    output = tmp_path / "predictions.csv"
    args = [
        "predict",
        "--checkpoint",
        str(trained.checkpoint_path),
        "--input",
        str(request_csv),
        "--output",
        str(output),
    ]
    assert cli.main(args) == 0
    predictions = pd.read_csv(output)
    assert len(predictions) == 10, f"{len(predictions)} predictions for 10 rows"
    assert set(predictions["label"]) <= set(trained.preprocessor.classes), set(predictions["label"])
    assert predictions["confidence"].between(1 / len(trained.preprocessor.classes), 1).all()
    assert "10 predictions written" in capsys.readouterr().out


def test_predict_without_output_writes_csv_to_stdout(trained, request_csv, capsys):
    assert cli.main(["predict", "--checkpoint", str(trained.checkpoint_path), "--input", str(request_csv)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("label,confidence"), lines[0]
    assert len(lines) == 11, f"{len(lines)} lines for a header and 10 rows"


def test_evaluate_scores_the_checkpoint_on_its_own_test_split(trained, capsys):
    assert cli.main(["evaluate", "--checkpoint", str(trained.checkpoint_path)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["source"] == "test split"
    assert report["rows"] == trained.metrics["rows"]["test"]
    assert report["accuracy"] == pytest.approx(trained.metrics["test_accuracy"])


def test_predict_refuses_an_unseen_category_with_exit_status_2(trained, request_csv, capsys):
    frame = pd.read_csv(request_csv)
    frame.loc[3, "island"] = "Atlantis"
    frame.to_csv(request_csv, index=False)
    assert cli.main(["predict", "--checkpoint", str(trained.checkpoint_path), "--input", str(request_csv)]) == 2
    assert_one_line_error(capsys, "island", "Atlantis")


def test_predict_refuses_a_missing_column_with_exit_status_2(trained, request_csv, capsys):
    pd.read_csv(request_csv).drop(columns="body_mass_g").to_csv(request_csv, index=False)
    assert cli.main(["predict", "--checkpoint", str(trained.checkpoint_path), "--input", str(request_csv)]) == 2
    assert_one_line_error(capsys, "body_mass_g")


def test_missing_input_file_is_exit_status_2(trained, tmp_path, capsys):
    absent = tmp_path / "absent.csv"
    assert cli.main(["predict", "--checkpoint", str(trained.checkpoint_path), "--input", str(absent)]) == 2
    assert_one_line_error(capsys, "absent.csv")


def test_a_corrupt_checkpoint_is_exit_status_2(request_csv, tmp_path, capsys):
    checkpoint = tmp_path / "checkpoint.pt"
    checkpoint.write_bytes(b"this is not a checkpoint")
    assert cli.main(["predict", "--checkpoint", str(checkpoint), "--input", str(request_csv)]) == 2
    assert_one_line_error(capsys, "checkpoint.pt")


def test_a_checkpoint_with_pickled_code_is_refused_with_exit_status_2(request_csv, pickled_code, tmp_path, capsys):
    checkpoint = tmp_path / "checkpoint.pt"
    torch.save({"model_state": {}, "hook": pickled_code}, checkpoint)
    assert cli.main(["predict", "--checkpoint", str(checkpoint), "--input", str(request_csv)]) == 2
    assert_one_line_error(capsys, "checkpoint.pt")
    assert not pickled_code.ran(), "the CLI ran code pickled into a checkpoint"


def test_train_refuses_an_invalid_setting_with_exit_status_2(tmp_path, capsys):
    assert cli.main(["train", "--epochs", "0", "--output-dir", str(tmp_path)]) == 2
    assert_one_line_error(capsys, "epochs")
