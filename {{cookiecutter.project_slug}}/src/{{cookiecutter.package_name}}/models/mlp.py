"""A multi-layer perceptron classifier with dropout."""

from __future__ import annotations

import torch
from torch import nn

from .registry import register_model


@register_model("mlp")
class MLPClassifier(nn.Module):
    """Linear -> ReLU -> Dropout blocks, then a linear head that returns logits."""

    def __init__(
        self, in_features: int, num_classes: int, hidden_size: int = 64, depth: int = 2, dropout: float = 0.1
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = in_features
        for _ in range(depth):
            layers += [nn.Linear(width, hidden_size), nn.ReLU(), nn.Dropout(dropout)]
            width = hidden_size
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))
