"""Evaluation metrics."""

from __future__ import annotations

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


def expected_calibration_error(probabilities: torch.Tensor, targets: torch.Tensor, bins: int = 10) -> float:
    """How far confidence is from accuracy: the mean over equal-width confidence bins of
    |accuracy - mean confidence|, each bin weighted by its share of the rows.

    ``probabilities`` are (N, C) rows summing to one; a model that says 0.9 should be right
    nine times in ten. Zero is perfectly calibrated, one is the worst possible.
    """
    if probabilities.ndim != 2 or targets.ndim != 1 or len(probabilities) != len(targets):
        raise ValueError(
            "expected probabilities (N, C) and targets (N,), "
            f"got {tuple(probabilities.shape)} and {tuple(targets.shape)}"
        )
    if len(targets) == 0:
        raise ValueError("calibration of an empty batch is undefined")
    confidence, predicted = probabilities.double().max(dim=1)
    correct = (predicted == targets).double()
    # Bin i holds confidences in (i/bins, (i+1)/bins]; a confidence of exactly 0 joins the first bin.
    index = (torch.ceil(confidence * bins) - 1).clamp(0, bins - 1).long()
    error = 0.0
    for i in range(bins):
        members = index == i
        if members.any():
            error += members.double().mean().item() * abs(
                correct[members].mean().item() - confidence[members].mean().item()
            )
    return error
