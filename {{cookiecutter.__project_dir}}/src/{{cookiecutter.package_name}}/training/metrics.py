"""Evaluation metrics."""

from __future__ import annotations

from dataclasses import dataclass

import torch


def accuracy(logits: torch.Tensor, targets: torch.Tensor) -> float:
    """Fraction of rows whose highest-scoring class is the target."""
    if logits.ndim != 2 or targets.ndim != 1 or len(logits) != len(targets):
        raise ValueError(
            f"expected logits (N, C) and targets (N,), got {tuple(logits.shape)} and {tuple(targets.shape)}"
        )
    if len(targets) == 0:
        raise ValueError("accuracy of an empty batch is undefined")
    return (logits.argmax(dim=1) == targets).float().mean().item()


def confusion_matrix(predicted: torch.Tensor, targets: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Counts (num_classes, num_classes): row ``i``, column ``j`` counts the rows of class ``i`` predicted as ``j``.

    The diagonal holds the rows predicted right; each row sums to the rows of that class.
    """
    if predicted.ndim != 1 or targets.ndim != 1 or len(predicted) != len(targets):
        raise ValueError(
            f"expected predicted (N,) and targets (N,), got {tuple(predicted.shape)} and {tuple(targets.shape)}"
        )
    for name, values in (("predicted", predicted), ("targets", targets)):
        if len(values) and not (int(values.min()) >= 0 and int(values.max()) < num_classes):
            raise ValueError(f"{name} holds classes outside 0..{num_classes - 1}")
    pairs = targets.long().cpu() * num_classes + predicted.long().cpu()
    return torch.bincount(pairs, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


@dataclass(frozen=True)
class CalibrationBin:
    """The rows whose confidence (highest probability) lies in (lower, upper]: how many, their
    mean confidence and the share of them predicted right (both None for an empty bin)."""

    lower: float
    upper: float
    rows: int
    confidence: float | None
    accuracy: float | None


def calibration_bins(probabilities: torch.Tensor, targets: torch.Tensor, bins: int = 10) -> list[CalibrationBin]:
    """The rows sorted into ``bins`` equal-width bins of confidence: what a reliability diagram draws.

    Bin i holds confidences in (i/bins, (i+1)/bins]; a confidence of exactly 0 joins the first bin.
    """
    if probabilities.ndim != 2 or targets.ndim != 1 or len(probabilities) != len(targets):
        raise ValueError(
            "expected probabilities (N, C) and targets (N,), "
            f"got {tuple(probabilities.shape)} and {tuple(targets.shape)}"
        )
    if len(targets) == 0:
        raise ValueError("calibration of an empty batch is undefined")
    confidence, predicted = probabilities.detach().cpu().double().max(dim=1)
    correct = (predicted == targets.cpu()).double()
    index = (torch.ceil(confidence * bins) - 1).clamp(0, bins - 1).long()
    found = []
    for i in range(bins):
        members = index == i
        rows = int(members.sum())
        found.append(
            CalibrationBin(
                lower=i / bins,
                upper=(i + 1) / bins,
                rows=rows,
                confidence=confidence[members].mean().item() if rows else None,
                accuracy=correct[members].mean().item() if rows else None,
            )
        )
    return found


def expected_calibration_error(probabilities: torch.Tensor, targets: torch.Tensor, bins: int = 10) -> float:
    """How far confidence is from accuracy: the mean over equal-width confidence bins of
    |accuracy - mean confidence|, each bin weighted by its share of the rows.

    ``probabilities`` are (N, C) rows summing to one; a model that says 0.9 should be right
    nine times in ten. Zero is perfectly calibrated, one is the worst possible.
    """
    found = calibration_bins(probabilities, targets, bins)
    total = len(targets)
    return sum(b.rows / total * abs((b.accuracy or 0.0) - (b.confidence or 0.0)) for b in found if b.rows)
