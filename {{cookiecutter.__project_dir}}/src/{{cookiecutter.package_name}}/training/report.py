"""The training report: what a run learned, as pictures and one page that any browser opens.

``write_report`` draws the learning curves (each score of ``metrics.SCORES``, loss and accuracy,
per epoch, training and validation), the confusion matrix on the test split and a reliability diagram with the expected
calibration error, saves each as a PNG in the run folder and writes ``report.html`` beside them:
the same pictures embedded as data URIs (one self-contained file, to mail or archive, that
loads nothing from anywhere) and the numbers as tables.

matplotlib is imported by the functions that draw, and draws on figures of its own with its
Agg canvas (no pyplot, no global state): importing the package, the unit tests and a run with
``--no-report`` do without it.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from ..files import write_bytes, write_text
from .metrics import (
    CALIBRATION_BINS,
    SCORES,
    CalibrationBin,
    EpochRecord,
    calibration_bins,
    confusion_matrix,
    expected_calibration_error,
)

REPORT_NAME = "report.html"
# Above this many classes the confusion matrix's cells are too small to print their counts in.
ANNOTATED_CLASSES = 20
DPI = 100


def picture_names() -> dict[str, str]:
    """Each picture's file name in the run folder, in the order the page shows them: a learning
    curve per score (``<score>.png``), then the confusion matrix and the reliability diagram."""
    return {**{name: f"{name}.png" for name in SCORES}, "confusion": "confusion.png", "calibration": "calibration.png"}


def write_report(
    folder: str | Path,
    *,
    history: Sequence[EpochRecord],
    metrics: dict[str, Any],
    classes: Sequence[str],
    probabilities: torch.Tensor,
    labels: torch.Tensor,
) -> Path:
    """Write the pictures and ``report.html`` into ``folder``; the page's path.

    ``history`` holds a record per epoch (its training and validation scores);
    ``metrics`` is what ``metrics.json`` holds; ``probabilities`` (N, C) and ``labels`` (N,) are
    the model's on the test split. Everything is drawn in memory first, then each file is
    written atomically and the page last; if writing fails, the pictures this call wrote are
    removed again, so no report is ever half there.
    """
    folder = Path(folder)
    predicted = probabilities.argmax(dim=1)
    matrix = confusion_matrix(predicted, labels, len(classes))
    bins = calibration_bins(probabilities, labels, CALIBRATION_BINS)
    error = expected_calibration_error(probabilities, labels, CALIBRATION_BINS)
    names = picture_names()
    pictures = {
        **{names[name]: draw_curves(history, name) for name in SCORES},
        names["confusion"]: draw_confusion(matrix, classes),
        names["calibration"]: draw_calibration(bins, error),
    }
    page = render_page(
        folder.name,
        history=history,
        metrics=metrics,
        classes=classes,
        matrix=matrix,
        bins=bins,
        error=error,
        pictures=pictures,
    )
    written: list[Path] = []
    try:
        for name, data in pictures.items():
            write_bytes(data, folder / name)
            written.append(folder / name)
        write_text(page, folder / REPORT_NAME)
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    return folder / REPORT_NAME


# -- pictures ----------------------------------------------------------------------------
def _figure(width: float, height: float, rows: int = 1, height_ratios: Sequence[float] | None = None):
    """A figure on matplotlib's Agg canvas (no pyplot, no display) and its axes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(rows, 1, height_ratios=height_ratios) if rows > 1 else figure.subplots()
    return figure, axes


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def _series(scores: Sequence[Mapping[str, float]], name: str) -> list[float]:
    """One value per epoch; NaN (a gap in the curve) where an epoch lacks it, e.g. one trained
    before the history recorded that score."""
    values = [entry.get(name) for entry in scores]
    return [math.nan if value is None else float(value) for value in values]


def draw_curves(history: Sequence[EpochRecord], metric: str) -> bytes:
    """Training and validation ``metric`` (a score: "loss", "accuracy") per epoch, as PNG bytes."""
    figure, axes = _figure(6, 4)
    epochs = [record.epoch + 1 for record in history]
    train, val = _series([r.train for r in history], metric), _series([r.val for r in history], metric)
    axes.plot(epochs, train, marker="o", label=f"training {metric}")
    axes.plot(epochs, val, marker="s", label=f"validation {metric}")
    axes.set_xlabel("epoch")
    axes.set_ylabel(metric)
    if metric != "loss" and all(0 <= v <= 1 for v in train + val if not math.isnan(v)):  # a share of rows
        axes.set_ylim(0, 1.02)
    axes.xaxis.get_major_locator().set_params(integer=True)
    axes.grid(alpha=0.3)
    axes.legend()
    axes.set_title(f"{metric.capitalize()} per epoch")
    return _png(figure)


def draw_confusion(matrix: torch.Tensor, classes: Sequence[str]) -> bytes:
    """The confusion matrix as a heat map: true class down, predicted class across, as PNG bytes."""
    count = len(classes)
    side = min(12.0, max(4.5, 0.55 * count + 2.5))
    figure, axes = _figure(side, side)
    counts = matrix.tolist()
    image = axes.imshow(counts, cmap="Blues", vmin=0)
    figure.colorbar(image, ax=axes, shrink=0.8, label="rows")
    slanted = count * max(map(len, classes), default=0) > 30  # long names side by side would overlap
    axes.set_xticks(
        range(count), labels=list(classes), rotation=45 if slanted else 0, ha="right" if slanted else "center"
    )
    axes.set_yticks(range(count), labels=list(classes))
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    if count <= ANNOTATED_CLASSES:
        top = max(max(row) for row in counts) or 1
        for i, row in enumerate(counts):
            for j, value in enumerate(row):
                colour = "white" if value > top / 2 else "black"
                axes.text(j, i, str(value), ha="center", va="center", color=colour, fontsize=9)
    total, right = int(matrix.sum()), int(matrix.diagonal().sum())
    axes.set_title(f"Test split: {right} of {total} right")
    return _png(figure)


def draw_calibration(bins: Sequence[CalibrationBin], error: float) -> bytes:
    """The reliability diagram of ``calibration_figure`` as PNG bytes."""
    return _png(calibration_figure(bins, error))


def calibration_figure(bins: Sequence[CalibrationBin], error: float):
    """A reliability diagram: the accuracy of each confidence bin against the diagonal of perfect
    calibration, the gap shaded, and below it how many rows fell in each bin. The legend sits
    above the plot, where no bar can be, whatever the bins hold."""
    figure, (top, bottom) = _figure(6, 6, rows=2, height_ratios=(3, 1))
    width = bins[0].upper - bins[0].lower
    lefts = [b.lower for b in bins]
    accuracy = [b.accuracy or 0.0 for b in bins]
    confidence = [b.confidence if b.rows and b.confidence is not None else b.lower + width / 2 for b in bins]
    top.bar(lefts, accuracy, width=width, align="edge", edgecolor="black", label="accuracy")
    gaps = [c - a if b.rows else 0.0 for b, a, c in zip(bins, accuracy, confidence, strict=True)]
    top.bar(
        lefts,
        gaps,
        bottom=accuracy,
        width=width,
        align="edge",
        color="tab:red",
        alpha=0.3,
        edgecolor="tab:red",
        label="gap to the mean confidence",
    )
    top.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
    top.set_xlim(0, 1)
    top.set_ylim(0, 1)
    top.set_ylabel("accuracy")
    figure.legend(loc="outside upper center", ncols=2)
    top.set_title(f"Reliability on the test split: ECE {error:.4f} ({len(bins)} bins)")
    bottom.bar(lefts, [b.rows for b in bins], width=width, align="edge", color="tab:grey", edgecolor="black")
    bottom.set_xlim(0, 1)
    bottom.set_xlabel("confidence (highest class probability)")
    bottom.set_ylabel("rows")
    return figure


# -- the page ----------------------------------------------------------------------------
STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 60em; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; }
td { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f3f3f3; text-align: left; }
figure { margin: 1em 0; }
img { max-width: 100%; height: auto; }
"""


def _number(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}f}"


def _table(table_id: str, header: Sequence[str], rows: Sequence[Sequence[str]], *, row_headers: bool = False) -> str:
    """An HTML table; cells are escaped here. With ``row_headers`` each row's first cell is a <th>."""
    lines = [f'<table id="{table_id}">', "<thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header)]
    lines.append("</tr></thead><tbody>")
    for row in rows:
        first, rest = (f"<th>{html.escape(row[0])}</th>", row[1:]) if row_headers else ("", row)
        lines.append("<tr>" + first + "".join(f"<td>{html.escape(cell)}</td>" for cell in rest) + "</tr>")
    lines.append("</tbody></table>")
    return "\n".join(lines)


def _image(name: str, data: bytes, description: str) -> str:
    encoded = base64.b64encode(data).decode("ascii")
    return (
        f'<figure><img id="{name.removesuffix(".png")}-picture" src="data:image/png;base64,{encoded}" '
        f'alt="{html.escape(description)}"><figcaption>{html.escape(description)} (<code>{name}</code>)'
        "</figcaption></figure>"
    )


def render_page(
    run: str,
    *,
    history: Sequence[EpochRecord],
    metrics: dict[str, Any],
    classes: Sequence[str],
    matrix: torch.Tensor,
    bins: Sequence[CalibrationBin],
    error: float,
    pictures: dict[str, bytes],
) -> str:
    """The report as one HTML page: the summary, the pictures and their numbers as tables."""
    rows = metrics.get("rows", {})
    summary = [
        *((f"test {name}", _number(metrics.get(f"test_{name}"))) for name in SCORES),
        (f"expected calibration error ({len(bins)} bins)", _number(error)),
        *((f"validation {name}", _number(metrics.get(f"val_{name}"))) for name in SCORES),
        ("rows (train / validation / test)", " / ".join(str(rows.get(k, "–")) for k in ("train", "val", "test"))),
        ("classes", ", ".join(classes)),
        ("model", str(metrics.get("model", "–"))),
        ("epochs", str(metrics.get("epochs", len(history)))),
        ("seed", str(metrics.get("seed", "–"))),
        ("processes", str(metrics.get("processes", 1))),
        ("device", str(metrics.get("device", "–"))),
    ]
    epochs = [
        [
            str(record.epoch + 1),
            *(_number(record.train.get(name)) for name in SCORES),
            *(_number(record.val.get(name)) for name in SCORES),
        ]
        for record in history
    ]
    confusion = [[name, *(str(int(v)) for v in counts)] for name, counts in zip(classes, matrix.tolist(), strict=True)]
    calibration = [
        [f"({b.lower:.1f}, {b.upper:.1f}]", str(b.rows), _number(b.confidence), _number(b.accuracy)] for b in bins
    ]
    total, right = int(matrix.sum()), int(matrix.diagonal().sum())
    picture = {key: (name, pictures[name]) for key, name in picture_names().items()}
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        '<head><meta charset="utf-8">',
        f"<title>Training report: {html.escape(run)}</title>",
        f"<style>{STYLE}</style></head>",
        "<body>",
        f"<h1>Training report: <code>{html.escape(run)}</code></h1>",
        "<h2>Summary</h2>",
        _table("summary", ["", "value"], summary, row_headers=True),
        "<h2>Learning curves</h2>",
        "<p>Training figures are measured during each epoch, in train mode (dropout on), on the "
        "weights before each step; validation figures after the epoch, in eval mode.</p>",
        *(_image(*picture[name], f"Training and validation {name} per epoch") for name in SCORES),
        _table(
            "history",
            ["epoch", *(f"train {name}" for name in SCORES), *(f"validation {name}" for name in SCORES)],
            epochs,
        ),
        "<h2>Confusion matrix on the test split</h2>",
        f"<p>{right} of {total} test rows predicted right. A row per true class, a column per predicted class.</p>",
        _image(*picture["confusion"], "Confusion matrix on the test split"),
        _table("confusion", ["true \\ predicted", *classes], confusion, row_headers=True),
        "<h2>Calibration on the test split</h2>",
        f"<p>Expected calibration error {_number(error)}: the mean gap between confidence and accuracy over "
        f"{len(bins)} equal-width confidence bins, each weighed by its share of the rows. A model that says "
        "0.9 should be right nine times in ten.</p>",
        _image(*picture["calibration"], "Reliability diagram on the test split"),
        _table("calibration", ["confidence", "rows", "mean confidence", "accuracy"], calibration),
        "</body>",
        "</html>",
    ]
    return "\n".join(parts) + "\n"
