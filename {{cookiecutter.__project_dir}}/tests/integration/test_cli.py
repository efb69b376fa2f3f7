"""The command line, run in-process: train, predict and evaluate; bad input is exit status 2 and one line."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from {{ cookiecutter.package_name }} import cli
from {{ cookiecutter.package_name }}.data import write_examples

pytestmark = pytest.mark.slow


@pytest.fixture
def request_csv(tmp_path, embedded_examples, split):
    """Ten held-out examples, written in the task's own format the way a user would hand them over."""
    return write_examples(embedded_examples.subset(split.test[:10]), tmp_path / "requests.csv")


def test_train_writes_a_checkpoint_and_metrics_and_reports_accuracy(tmp_path, quick_data, capsys):
    output_dir = tmp_path / "run"
    data = ["--data", quick_data] if quick_data else []
    assert cli.main(["train", "--epochs", "2", "--output-dir", str(output_dir), "--no-progress", *data]) == 0
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
    predictions = pd.read_csv(output, dtype={"label": str})
    assert len(predictions) == 10, f"{len(predictions)} predictions for 10 inputs"
    assert set(predictions["label"]) <= set(trained.preprocessor.classes), set(predictions["label"])
    assert predictions["confidence"].between(1 / len(trained.preprocessor.classes), 1).all()
    assert "10 predictions written" in capsys.readouterr().out


def test_predict_without_output_writes_csv_to_stdout(trained, request_csv, capsys):
    assert cli.main(["predict", "--checkpoint", str(trained.checkpoint_path), "--input", str(request_csv)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert "label,confidence" in lines[0], lines[0]
    assert len(lines) == 11, f"{len(lines)} lines for a header and 10 inputs"


def test_evaluate_scores_the_checkpoint_on_its_own_test_split(trained, capsys):
    assert cli.main(["evaluate", "--checkpoint", str(trained.checkpoint_path)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["source"] == "test split"
    assert report["rows"] == trained.metrics["rows"]["test"]
    assert report["accuracy"] == pytest.approx(trained.metrics["test_accuracy"])


def test_predict_refuses_an_empty_input_file_with_exit_status_2(trained, tmp_path, assert_one_line_error):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert cli.main(["predict", "--checkpoint", str(trained.checkpoint_path), "--input", str(empty)]) == 2
    assert_one_line_error("empty.csv")
    assert not (tmp_path / "predictions.csv").exists()


def test_missing_input_file_is_exit_status_2(trained, tmp_path, assert_one_line_error):
    absent = tmp_path / "absent.csv"
    assert cli.main(["predict", "--checkpoint", str(trained.checkpoint_path), "--input", str(absent)]) == 2
    assert_one_line_error("absent.csv")


def test_a_corrupt_checkpoint_is_exit_status_2(request_csv, tmp_path, assert_one_line_error):
    checkpoint = tmp_path / "checkpoint.pt"
    checkpoint.write_bytes(b"this is not a checkpoint")
    assert cli.main(["predict", "--checkpoint", str(checkpoint), "--input", str(request_csv)]) == 2
    assert_one_line_error("checkpoint.pt")


def test_a_checkpoint_with_pickled_code_is_refused_with_exit_status_2(
    request_csv, pickled_code, tmp_path, assert_one_line_error
):
    checkpoint = tmp_path / "checkpoint.pt"
    torch.save({"model_state": {}, "hook": pickled_code}, checkpoint)
    assert cli.main(["predict", "--checkpoint", str(checkpoint), "--input", str(request_csv)]) == 2
    assert_one_line_error("checkpoint.pt")
    assert not pickled_code.ran(), "the CLI ran code pickled into a checkpoint"


def test_train_refuses_an_invalid_setting_with_exit_status_2(tmp_path, assert_one_line_error):
    assert cli.main(["train", "--epochs", "0", "--output-dir", str(tmp_path)]) == 2
    assert_one_line_error("epochs")
