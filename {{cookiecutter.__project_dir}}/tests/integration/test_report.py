"""Every run writes a report people can look at: its pictures are there, they and the page show the
run's own numbers (recomputed here from the checkpoint), the page needs nothing but itself, and a
report that cannot be written leaves no half of one behind and does not fail the run."""

from __future__ import annotations

import base64
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import {{ cookiecutter.package_name }} as package
from {{ cookiecutter.package_name }}.checkpoint import (
    load_checkpoint,
)
from {{ cookiecutter.package_name }}.config import TrainConfig
from {{ cookiecutter.package_name }}.data import embedded_dataset_path, load_examples
from {{ cookiecutter.package_name }}.files import fingerprint
from {{ cookiecutter.package_name }}.inference import Predictor
from {{ cookiecutter.package_name }}.training import (
    calibration_bins,
    card,
    confusion_matrix,
    expected_calibration_error,
    fit,
    report,
    split_examples,
)
from {{ cookiecutter.package_name }}.training.metrics import SCORES, EpochRecord
from {{ cookiecutter.package_name }}.training.runs import DISTRIBUTION

pytestmark = pytest.mark.slow

PICTURES = ("loss.png", "accuracy.png", "confusion.png", "calibration.png")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
BINS = 10
# The page prints four decimals: a number shown may be this far from the value it stands for.
SHOWN = 5e-5 + 1e-9

# Import every module of the package (but __main__, which would run the command line, and the
# server, which needs the serve extra) and name the first one after which matplotlib is loaded.
IMPORT_EVERYTHING = """
import importlib, pkgutil, sys
import PACKAGE
skipped = {"PACKAGE.__main__", "PACKAGE.inference.server"}
for module in pkgutil.walk_packages(PACKAGE.__path__, "PACKAGE."):
    if module.name not in skipped:
        importlib.import_module(module.name)
        if "matplotlib" in sys.modules:
            sys.exit(f"importing {module.name} imported matplotlib")
"""


@pytest.fixture(scope="module")
def run_folder(trained) -> Path:
    """The folder of the shared short run, written with the defaults: its report among its files."""
    return trained.checkpoint_path.parent


@pytest.fixture(scope="module")
def held_out_predictions(trained) -> tuple[torch.Tensor, torch.Tensor]:
    """(probabilities, labels) of the run's checkpoint on its test split, found again from its stored settings."""
    config = TrainConfig.from_dict(load_checkpoint(trained.checkpoint_path).config)
    examples = load_examples(config.data)
    split = split_examples(examples, config.val_fraction, config.test_fraction, config.seed)
    rows = examples.subset(split.test)
    predictor = Predictor.from_checkpoint(trained.checkpoint_path)
    probabilities = torch.as_tensor(predictor.predict_proba(rows.read()))
    return probabilities, torch.as_tensor(predictor.preprocessor.encode_labels(rows.labels))


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) of a PNG, decoded by matplotlib (Pillow is not a dependency of every project)."""
    from matplotlib.image import imread

    pixels = imread(io.BytesIO(data), format="png")
    return pixels.shape[1], pixels.shape[0]


def calibration_error_shown(page) -> float:
    """The expected calibration error in the page's summary, under the heading that names the bins."""
    heading = f"expected calibration error ({BINS} bins)"
    summary = page.summary()
    assert heading in summary, f"the summary has no {heading!r}: {sorted(summary)}"
    return shown(summary[heading])


def shown(text: str) -> float:
    """A number as the page prints it."""
    assert re.fullmatch(r"-?\d+\.\d{4}", text), f"{text!r} is not a number printed with four decimals"
    return float(text)


# -- the report of a real run ----------------------------------------------------------
def test_every_picture_is_a_png_in_the_run_folder(run_folder: Path) -> None:
    for name in PICTURES:
        path = run_folder / name
        assert path.is_file(), f"the run folder lacks {name}: {sorted(p.name for p in run_folder.iterdir())}"
        data = path.read_bytes()
        assert data.startswith(PNG_SIGNATURE), f"{name} does not start with the PNG signature: {data[:8]!r}"
        width, height = png_size(data)
        assert min(width, height) >= 300, f"{name} is {width}x{height} pixels, too small to read"


def test_the_page_embeds_every_picture_and_loads_nothing_from_elsewhere(run_folder: Path, read_report) -> None:
    page = read_report(run_folder)
    embedded = []
    for image in page.images:
        source = image.get("src", "")
        assert source.startswith("data:image/png;base64,"), f"an image is loaded from {source[:80]!r}"
        embedded.append(base64.b64decode(source.removeprefix("data:image/png;base64,"), validate=True))
        assert image.get("alt"), f"the image {image.get('id')!r} has no alt text"
    for name in PICTURES:
        path = run_folder / name
        assert path.is_file(), f"the run folder lacks {name}, so the page cannot be checked against it"
        assert path.read_bytes() in embedded, f"report.html does not embed {name} as it is on disk"
    assert len(embedded) == len(PICTURES), f"the page holds {len(embedded)} images, expected {len(PICTURES)}"
    outside = [address for address in page.addresses if not address.startswith("data:")]
    assert not outside, f"the page loads {outside}: it must stand alone"
    for marker in ("<link", "<script", "@import", "url("):
        assert marker not in page.text, f"the page holds {marker!r}: it must load nothing"


@pytest.mark.parametrize("accuracy", [1.0, 0.0], ids=["always-right", "always-wrong"])
def test_the_calibration_legend_covers_no_bar(accuracy) -> None:
    # Ten classes, so that confidence spans every bin from 0.1 up; each bin's bar as high as it can be.
    confidence = torch.linspace(0.12, 0.98, 9).repeat_interleave(20)
    probabilities = torch.cat([confidence[:, None], ((1 - confidence) / 9)[:, None].expand(-1, 9)], dim=1)
    labels = torch.full((len(confidence),), 0 if accuracy else 1)  # class 0 is every row's top class
    bins = calibration_bins(probabilities, labels, BINS)
    figure = report.calibration_figure(bins, expected_calibration_error(probabilities, labels, BINS))
    figure.canvas.draw()
    legends = [*figure.legends, *(axes.get_legend() for axes in figure.axes if axes.get_legend())]
    assert legends, "the reliability diagram has no legend"
    bars = [bar.get_window_extent() for axes in figure.axes for bar in axes.patches if bar.get_height()]
    for legend in legends:
        covered = [box for box in bars if legend.get_window_extent().overlaps(box)]
        assert not covered, f"the legend covers {len(covered)} bar(s) of the reliability diagram"


def test_every_element_id_on_the_page_is_unique(run_folder: Path, read_report) -> None:
    # A link to #confusion, or a script that finds it, must reach one element.
    ids = read_report(run_folder).ids
    repeated = sorted({name for name in ids if ids.count(name) > 1})
    assert not repeated, f"report.html gives the ids {repeated} to more than one element"


def test_the_confusion_matrix_is_the_checkpoint_s_on_the_test_split(
    run_folder: Path, read_report, trained, held_out_predictions
) -> None:
    probabilities, labels = held_out_predictions
    page = read_report(run_folder)
    classes, counts = page.confusion()
    assert classes == trained.preprocessor.classes, f"the table names classes {classes}"
    metrics = json.loads((run_folder / "metrics.json").read_text())
    total = sum(map(sum, counts))
    assert total == metrics["rows"]["test"], (
        f"the confusion matrix counts {total} rows, the test split has {metrics['rows']['test']}: other rows scored"
    )
    right = sum(counts[i][i] for i in range(len(counts)))
    assert right / total == pytest.approx(metrics["test_accuracy"]), (
        f"its diagonal gives accuracy {right}/{total}, metrics.json says {metrics['test_accuracy']:.4f}"
    )
    assert shown(page.summary()["test accuracy"]) == pytest.approx(metrics["test_accuracy"], abs=SHOWN)
    expected = confusion_matrix(probabilities.argmax(dim=1), labels, len(classes)).tolist()
    assert counts == expected, f"the page shows {counts}, the checkpoint predicts {expected} (rows: true classes)"


def test_the_calibration_shown_is_the_checkpoint_s_on_the_test_split(
    run_folder: Path, read_report, held_out_predictions
) -> None:
    probabilities, labels = held_out_predictions
    page = read_report(run_folder)
    expected = expected_calibration_error(probabilities, labels, bins=BINS)
    error = calibration_error_shown(page)
    assert error == pytest.approx(expected, abs=SHOWN), f"the page shows ECE {error}, the test split {expected:.6f}"
    rows = page.table("calibration")[1:]
    bins = calibration_bins(probabilities, labels, bins=BINS)
    assert len(rows) == BINS, f"the calibration table has {len(rows)} bins, expected {BINS}"
    for row, part in zip(rows, bins, strict=True):
        assert int(row[1]) == part.rows, f"bin {row[0]}: {row[1]} rows shown, the test split {part.rows}"
        if part.rows:
            assert shown(row[2]) == pytest.approx(part.confidence, abs=SHOWN), f"bin {row[0]}: confidence {row[2]}"
            assert shown(row[3]) == pytest.approx(part.accuracy, abs=SHOWN), f"bin {row[0]}: accuracy {row[3]}"


def test_the_epoch_table_has_a_row_per_epoch_of_the_history(run_folder: Path, read_report, trained) -> None:
    header, *rows = read_report(run_folder).table("history")
    assert header == ["epoch", "train accuracy", "train loss", "validation accuracy", "validation loss"], header
    assert len(rows) == len(trained.history), f"{len(rows)} rows for {len(trained.history)} epochs"
    for row, record in zip(rows, trained.history, strict=True):
        assert int(row[0]) == record.epoch + 1, f"row {row} is not epoch {record.epoch + 1}"
        values = (record.train["accuracy"], record.train["loss"], record.val["accuracy"], record.val["loss"])
        for cell, name, value in zip(row[1:], header[1:], values, strict=True):
            assert 0 <= value < float("inf"), f"epoch {row[0]}: {name} is {value}"
            assert shown(cell) == pytest.approx(value, abs=SHOWN), f"epoch {row[0]}: {name} {cell}, history {record}"


def test_a_score_added_to_the_table_reaches_the_history_metrics_and_report(
    quick_config, read_report, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``metrics.SCORES`` is the one place to add a score: one whose every row counts 1 (so its
    mean is exactly 1 on any split) must reach every epoch record, the checkpoint's history,
    metrics.json, the report's tables and a learning curve of its own."""
    monkeypatch.setitem(SCORES, "ones", lambda logits, labels, loss: torch.ones(len(labels)).sum())
    result = fit(quick_config(report=True))
    for record in result.history:
        assert (record.train.get("ones"), record.val.get("ones")) == (1.0, 1.0), f"epoch record {record}"
    stored = load_checkpoint(result.checkpoint_path).history
    assert all((entry.get("train_ones"), entry.get("val_ones")) == (1.0, 1.0) for entry in stored), stored
    written = json.loads((result.checkpoint_path.parent / "metrics.json").read_text())
    for key in ("test_ones", "val_ones", "train_ones"):
        assert written.get(key) == 1.0, f"metrics.json: {key} is {written.get(key)}"
    page = read_report(result.checkpoint_path.parent)
    assert shown(page.summary()["test ones"]) == 1.0, page.summary()
    header = page.table("history")[0]
    assert {"train ones", "validation ones"} <= set(header), header
    assert (result.checkpoint_path.parent / "ones.png").is_file(), "no learning curve for the added score"


# -- the report module, on numbers known by hand -----------------------------------------
def hand_made_run() -> dict:
    """Three classes, six test rows with a confusion matrix that is not symmetric, two epochs (the
    first from a history that did not yet record the training accuracy)."""
    probabilities = torch.tensor(
        [[0.85, 0.1, 0.05], [0.3, 0.55, 0.15], [0.2, 0.75, 0.05], [0.1, 0.72, 0.18], [0.1, 0.35, 0.55], [0, 0.05, 0.95]]
    )
    return {
        "history": [
            EpochRecord(0, train={"loss": 1.2}, val={"loss": 1.1, "accuracy": 0.4}),
            EpochRecord(1, train={"loss": 0.8, "accuracy": 0.625}, val={"loss": 0.9, "accuracy": 0.5}),
        ],
        "metrics": {"test_accuracy": 0.5, "test_loss": 0.9, "rows": dict(train=20, val=6, test=6)},
        "classes": ["ant", "bee", "cat"],
        "probabilities": probabilities,
        "labels": torch.tensor([0, 0, 0, 1, 1, 2]),
    }


def test_the_confusion_table_has_a_row_per_true_class_and_the_error_is_the_hand_computed_one(
    tmp_path: Path, read_report
) -> None:
    report.write_report(tmp_path, **hand_made_run())
    page = read_report(tmp_path)
    classes, counts = page.confusion()
    assert classes == ["ant", "bee", "cat"], classes
    # True ant: predicted ant once, bee twice; true bee: bee once, cat once; true cat: cat.
    assert counts == [[1, 2, 0], [0, 1, 1], [0, 0, 1]], f"rows must be the true classes, got {counts}"
    # Bins (0.5, 0.6]: 0.55 and 0.55, both wrong; (0.7, 0.8]: 0.75 wrong, 0.72 right; (0.8, 0.9]: 0.85 right;
    # (0.9, 1]: 0.95 right. Each bin's |accuracy - mean confidence|, weighed by its rows of six.
    expected = (2 * 0.55 + 2 * abs(0.5 - 0.735) + (1 - 0.85) + (1 - 0.95)) / 6
    error = calibration_error_shown(page)
    assert error == pytest.approx(expected, abs=SHOWN), f"ECE shown {error}, by hand {expected:.6f}"
    epochs = page.table("history")[1:]
    assert epochs == [
        ["1", "–", "1.2000", "0.4000", "1.1000"],
        ["2", "0.6250", "0.8000", "0.5000", "0.9000"],
    ], epochs


def test_a_failure_while_writing_removes_the_pictures_already_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full_disk(*args, **kwargs):
        raise OSError("no space left on device")

    monkeypatch.setattr(report, "write_text", full_disk)  # the page, written after the pictures
    with pytest.raises(OSError, match="no space"):
        report.write_report(tmp_path, **hand_made_run())
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == [], f"a failed report left {left} behind"


# -- where the report is written -------------------------------------------------------
def test_a_report_that_cannot_be_drawn_warns_and_the_run_stands(
    quick_config, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(*args, **kwargs):
        raise RuntimeError("no font found")

    monkeypatch.setattr(report, "draw_curves", broken)
    config = quick_config(epochs=1, report=True)
    result = fit(config, show_progress=False)
    folder = Path(config.output_dir)
    left = sorted(p.name for p in folder.iterdir())
    assert left == ["MODEL_CARD.md", "checkpoint.pt", "config.json", "environment.json", "metrics.json"], (
        f"a report that failed left {left}"
    )
    assert result.checkpoint_path is not None, "the run lost its checkpoint"
    err = capsys.readouterr().err
    assert "warning: no training report" in err, f"no warning on stderr: {err!r}"
    assert "no font found" in err, f"the warning does not say what broke: {err!r}"


def test_a_run_with_no_report_writes_none_but_still_its_model_card(quick_config) -> None:
    config = quick_config(epochs=1, report=False)
    fit(config, show_progress=False)
    drawn = [name for name in (*PICTURES, "report.html") if (Path(config.output_dir) / name).exists()]
    assert not drawn, f"report=False wrote {drawn}"
    assert (Path(config.output_dir) / card.CARD_NAME).is_file(), "report=False wrote no model card"


# -- the model card ----------------------------------------------------------------------
def test_the_model_card_states_the_run_s_own_figures(run_folder: Path, trained, held_out_predictions) -> None:
    """Counted again here from the checkpoint served on the test split its stored settings give."""
    text = (run_folder / card.CARD_NAME).read_text()
    probabilities, labels = held_out_predictions
    tested, right = len(labels), int((probabilities.argmax(dim=1) == labels).sum())
    assert f"## Evaluation on the held-out test split ({tested} examples)" in text, "the card names another size"
    assert f"Test accuracy {right / tested:.4f}: {right} of {tested} right" in text, (
        f"{right} of {tested} test examples are right, the card says otherwise:\n{text[:1500]}"
    )
    low, high = map(float, re.search(r"95% interval ([\d.]+) to ([\d.]+)", text).groups())
    assert low <= right / tested <= high, f"the interval {low}-{high} leaves out the accuracy {right / tested}"
    assert high - low <= 4 / tested**0.5, f"the interval {low}-{high} is wider than {tested} examples leave"
    error = expected_calibration_error(probabilities, labels)
    assert f"Expected calibration error {error:.4f}" in text, f"the card's calibration is not {error:.4f}"
    classes = Predictor.from_checkpoint(trained.checkpoint_path).classes
    for index, name in enumerate(classes):
        members = labels == index
        hits = int((probabilities.argmax(dim=1)[members] == index).sum())
        assert re.search(rf"^\| {re.escape(name)} \| {int(members.sum())} \| {hits} \(", text, re.MULTILINE), (
            f"class {name}: {int(members.sum())} test examples, {hits} right; not so in the card"
        )
    config = load_checkpoint(trained.checkpoint_path).config
    data = Path(config["data"]) if config["data"] else embedded_dataset_path()
    assert f"| sha256 | `{fingerprint(data)}` |" in text, "the card names other data"
    assert f"{DISTRIBUTION} train --config {Path(config['output_dir'], 'config.json').as_posix()}" in text


def test_a_model_card_that_cannot_be_written_is_a_warning_and_leaves_nothing(
    quick_config, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(card, "render_card", broken)
    config = quick_config(epochs=1)
    result = fit(config, show_progress=False)
    assert not (Path(config.output_dir) / card.CARD_NAME).exists(), "a card that failed was left behind"
    assert result.checkpoint_path is not None, "the run lost its checkpoint"
    err = capsys.readouterr().err
    assert re.search(r"warning: no model card .*disk full", err), f"no warning saying what broke: {err!r}"


def test_importing_the_package_does_not_import_matplotlib() -> None:
    script = IMPORT_EVERYTHING.replace("PACKAGE", package.__name__)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, (
        f"{result.stderr.strip()[-2000:]}: matplotlib belongs inside the functions that draw, "
        "so that the package, the unit tests and runs without a report do not pay for it"
    )
