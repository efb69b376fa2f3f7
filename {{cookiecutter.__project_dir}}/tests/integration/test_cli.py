"""The command line, run in-process: train, predict and evaluate; bad input is exit status 2 and one line."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pandas as pd
import pytest
import torch

from {{ cookiecutter.package_name }} import cli
from {{ cookiecutter.package_name }}.checkpoint import load_checkpoint, save_checkpoint
from {{ cookiecutter.package_name }}.data import read_inputs{% if cookiecutter.task == 'image' %}, write_examples{% endif %}
from {{ cookiecutter.package_name }}.inference import Predictor
from {{ cookiecutter.package_name }}.task import read_all

pytestmark = pytest.mark.slow

# As in an install without the serve extra: importing FastAPI, Starlette, uvicorn or python-multipart fails.
WITHOUT_SERVE_EXTRA = """
import importlib, pkgutil, sys
for name in ("fastapi", "starlette", "uvicorn", "python_multipart"):
    sys.modules[name] = None
import {{ cookiecutter.package_name }}
from {{ cookiecutter.package_name }} import cli
# The one module that needs the extra, and __main__, which would run the command line.
skipped = {"{{ cookiecutter.package_name }}.inference.server", "{{ cookiecutter.package_name }}.__main__"}
for module in pkgutil.walk_packages({{ cookiecutter.package_name }}.__path__, "{{ cookiecutter.package_name }}."):
    if module.name not in skipped:
        importlib.import_module(module.name)
sys.exit(cli.main(["serve", "--checkpoint", sys.argv[1]]))
"""


def test_train_writes_a_checkpoint_metrics_and_a_report_and_prints_the_accuracy(tmp_path, quick_data, capsys):
    output_dir = tmp_path / "run"
    data = ["--data", quick_data] if quick_data else []
    assert cli.main(["train", "--epochs", "2", "--output-dir", str(output_dir), "--no-progress", *data]) == 0
    assert (output_dir / "checkpoint.pt").is_file()
    assert (output_dir / "report.html").is_file(), "a run from `train` has no report.html"
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


def test_predict_works_a_batch_at_a_time_and_writes_each_row_beside_its_input_id(
    trained, request_csv, tmp_path, monkeypatch
):
    batches = []
    predict = Predictor.predict

    def recording(self, inputs):
        batches.append(len(inputs))
        return predict(self, inputs)

    monkeypatch.setattr(Predictor, "predict", recording)
    outputs = {size: tmp_path / f"batches-of-{size}.csv" for size in (1000, 3)}
    for size, output in outputs.items():
        args = ["--input", str(request_csv), "--output", str(output), "--batch-size", str(size)]
        assert cli.main(["predict", "--checkpoint", str(trained.checkpoint_path), *args]) == 0
    assert batches == [10, 3, 3, 3, 1], f"10 inputs predicted in batches of {batches} (--batch-size 1000, then 3)"
    ids = read_all(read_inputs(request_csv)).index
    whole, batched = (pd.read_csv(outputs[size], dtype={"label": str, ids.name: str}) for size in (1000, 3))
    assert list(batched.columns[:2]) == [ids.name, "label"], f"columns {list(batched.columns)}: the id comes first"
    assert batched[ids.name].tolist() == [str(i) for i in ids], "the ids written are not those of the inputs, in order"
    pd.testing.assert_frame_equal(batched, whole, check_exact=False, rtol=1e-5, atol=1e-6)


def test_predict_refuses_a_batch_size_below_one(trained, request_csv, assert_one_line_error):
    args = ["--input", str(request_csv), "--batch-size", "0"]
    assert cli.main(["predict", "--checkpoint", str(trained.checkpoint_path), *args]) == 2
    assert_one_line_error("--batch-size must be at least 1")


def test_evaluate_scores_the_checkpoint_on_its_own_test_split(trained, capsys):
    assert cli.main(["evaluate", "--checkpoint", str(trained.checkpoint_path)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["source"] == "test split"
    assert report["rows"] == trained.metrics["rows"]["test"]
    assert report["accuracy"] == pytest.approx(trained.metrics["test_accuracy"])
    assert cli.main(["evaluate", "--checkpoint", str(trained.checkpoint_path), "--batch-size", "7"]) == 0
    in_batches = json.loads(capsys.readouterr().out)
    assert in_batches == pytest.approx(report), f"scored in batches of 7: {in_batches}; at once: {report}"


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


@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_a_checkpoint_with_nan_weights_is_refused_naming_them(
    command, trained, request_csv, tmp_path, assert_one_line_error
):
    diverged = load_checkpoint(trained.checkpoint_path)
    name = next(iter(diverged.model_state))
    diverged.model_state[name] = torch.full_like(diverged.model_state[name], float("nan"))
    checkpoint = save_checkpoint(diverged, tmp_path / "diverged.pt")
    args = ["--input", str(request_csv)] if command == "predict" else []
    assert cli.main([command, "--checkpoint", str(checkpoint), *args]) == 2
    assert_one_line_error("nan or infinite", name)


def test_a_checkpoint_with_pickled_code_is_refused_with_exit_status_2(
    request_csv, pickled_code, tmp_path, assert_one_line_error
):
    checkpoint = tmp_path / "checkpoint.pt"
    torch.save({"model_state": {}, "hook": pickled_code}, checkpoint)
    assert cli.main(["predict", "--checkpoint", str(checkpoint), "--input", str(request_csv)]) == 2
    assert not pickled_code.ran(), "the CLI ran code pickled into a checkpoint"
    assert_one_line_error("checkpoint.pt: refused", "could run code")


def predict_args(trained, request_csv, output, *extra: str) -> list[str]:
    args = ["predict", "--checkpoint", str(trained.checkpoint_path), "--input", str(request_csv)]
    return [*args, "--output", str(output), *extra]


def snapshot(path):
    """The bytes of a file, or of every file under a folder: to show that nothing changed."""
    if path.is_dir():
        return {p.relative_to(path): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}
    return path.read_bytes()


@pytest.mark.parametrize("target", ["input", "checkpoint"])
def test_predict_refuses_to_write_over_a_file_it_reads_even_with_overwrite(
    trained, request_csv, target, tmp_path, assert_one_line_error
):
    checkpoint = tmp_path / "checkpoint.pt"  # a copy: the trained one is shared by other tests
    shutil.copyfile(trained.checkpoint_path, checkpoint)
    output = request_csv if target == "input" else checkpoint
    before = snapshot(output)
    args = ["predict", "--checkpoint", str(checkpoint), "--input", str(request_csv), "--output", str(output)]
    assert cli.main([*args, "--overwrite"]) == 2, f"predict accepted its own {target} as --output"
    assert_one_line_error(output.name, "read as input")
    assert snapshot(output) == before, f"predict wrote over its own {target}"


{% if cookiecutter.task == "image" -%}
def test_predict_refuses_to_write_inside_an_input_folder(trained, tmp_path, embedded_examples, split):
    folder = write_examples(embedded_examples.subset(split.test[:3]), tmp_path / "inputs")
    output = folder / "predictions.csv"
    assert cli.main(predict_args(trained, folder, output)) == 2, "predict accepted an output inside its input folder"
    assert not output.exists(), "predict wrote inside the folder it reads"


{% endif -%}
def test_predict_keeps_an_existing_output_unless_asked_to_overwrite(
    trained, request_csv, tmp_path, assert_one_line_error
):
    output = tmp_path / "predictions.csv"
    output.write_text("kept\n")
    assert cli.main(predict_args(trained, request_csv, output)) == 2, "predict replaced an existing output"
    assert_one_line_error("predictions.csv", "already exists", "--overwrite")
    assert output.read_text() == "kept\n", "predict replaced an existing output without --overwrite"
    assert cli.main(predict_args(trained, request_csv, output, "--overwrite")) == 0
    assert len(pd.read_csv(output)) == 10, "--overwrite did not replace the output"


def test_a_failed_write_keeps_the_old_output_and_leaves_no_partial_file(trained, request_csv, tmp_path, monkeypatch):
    output = tmp_path / "out" / "predictions.csv"
    output.parent.mkdir()
    output.write_text("kept\n")

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("os.fsync", disk_full)
    with pytest.raises(OSError, match="No space left"):
        cli.main(predict_args(trained, request_csv, output, "--overwrite"))
    assert output.read_text() == "kept\n", "a failed write damaged the previous output"
    assert [p.name for p in output.parent.iterdir()] == ["predictions.csv"], "a partial file was left behind"


def test_train_refuses_an_invalid_setting_with_exit_status_2(tmp_path, assert_one_line_error):
    assert cli.main(["train", "--epochs", "0", "--output-dir", str(tmp_path)]) == 2
    assert_one_line_error("epochs")


def test_without_the_serve_extra_every_module_imports_and_serve_says_how_to_get_it(trained):
    command = [sys.executable, "-c", WITHOUT_SERVE_EXTRA, str(trained.checkpoint_path)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, f"exit status {result.returncode}:\n{result.stderr[-3000:]}"
    assert len(lines) == 1, f"expected one line on stderr:\n{result.stderr[-3000:]}"
    assert "serve extra" in lines[0], lines[0]
    assert "[serve]" in lines[0], lines[0]
