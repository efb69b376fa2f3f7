"""The training objective. Models return logits; the loss applies log-softmax itself."""

from __future__ import annotations

from torch import nn


def classification_loss(label_smoothing: float = 0.0) -> nn.Module:
    """Mean cross-entropy over the batch, computed from logits (never from probabilities)."""
    return nn.CrossEntropyLoss(label_smoothing=label_smoothing, reduction="mean")
