"""What a run measures: the scores of every pass over a split, the epoch record, and the test
split's confusion matrix and calibration."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import torch

from .distributed import all_reduce_sum


def _loss_sum(logits: torch.Tensor, labels: torch.Tensor, loss: torch.Tensor) -> torch.Tensor:
    return loss.detach().double() * len(labels)  # the loss is the mean over the batch's rows


def _right(logits: torch.Tensor, labels: torch.Tensor, loss: torch.Tensor) -> torch.Tensor:
    return (logits.detach().argmax(dim=1) == labels).sum()


# The scores of a pass over a split (each training epoch, each validation, the test split), by
# name: what a batch adds to the score's sum, from its logits (N, C), labels (N,) and mean loss;
# the score is that sum over the pass's rows (and processes) divided by the rows. This table is
# the one place to add a score that is a mean over rows: it then reaches the epoch records, the
# checkpoint's history, metrics.json (`test_<name>`, `val_<name>`, `train_<name>`), the report's
# curves and tables, and the line `train` prints.
SCORES: dict[str, Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "accuracy": _right,
    "loss": _loss_sum,
}


# The equal-width confidence bins of the calibration error the report and the model card show.
CALIBRATION_BINS = 10


class ScoreSums:
    """The sums of every score over the batches of one pass, kept on the device (no wait for the
    device at each step) until ``means`` reads them, summed over the processes under torchrun."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.sums = torch.zeros(len(SCORES), dtype=torch.float64, device=device)
        self.rows = 0

    def add(self, logits: torch.Tensor, labels: torch.Tensor, loss: torch.Tensor) -> None:
        self.sums += torch.stack([score(logits, labels, loss).double() for score in SCORES.values()])
        self.rows += len(labels)

    def means(self) -> dict[str, float]:
        """Each score over the rows of every process; ValueError if no process scored a row."""
        *sums, rows = all_reduce_sum([*self.sums.tolist(), self.rows], self.device)
        if rows == 0:
            raise ValueError("no rows to score: the pass read no batch")
        return {name: total / rows for name, total in zip(SCORES, sums, strict=True)}


@dataclass(frozen=True)
class EpochRecord:
    """One epoch of a run: its index (from 0), the scores of its training pass (in train mode,
    measured on the weights before each step) and those of the validation split after it."""

    epoch: int
    train: Mapping[str, float] = field(default_factory=dict)
    val: Mapping[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, float]:
        """The flat form a checkpoint's history holds: ``epoch``, ``train_<score>``, ``val_<score>``."""
        return {
            "epoch": self.epoch,
            **{f"train_{name}": value for name, value in self.train.items()},
            **{f"val_{name}": value for name, value in self.val.items()},
        }

    @classmethod
    def from_dict(cls, entry: Mapping[str, float]) -> EpochRecord:
        """Read the flat form back; a score an older run did not record is absent, not invented."""
        scores: dict[str, dict[str, float]] = {split: {} for split in ("train", "val")}
        for key, value in entry.items():
            split, _, name = key.partition("_")
            if split in scores and name:
                scores[split][name] = float(value)
        return cls(int(entry["epoch"]), scores["train"], scores["val"])


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
