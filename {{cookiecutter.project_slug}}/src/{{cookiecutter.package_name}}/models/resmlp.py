"""A residual MLP with batch normalisation: a second, structurally different example."""

from __future__ import annotations

import torch
from torch import nn

from .registry import register_model


class ResidualBlock(nn.Module):
    """x + Linear(Dropout(ReLU(BatchNorm(Linear(x)))))"""

    def __init__(self, width: int, dropout: float) -> None:
        super().__init__()
        self.fc1 = nn.Linear(width, width)
        self.norm = nn.BatchNorm1d(width)
        self.dropout = nn.Dropout(dropout)
        self.fc2 = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.fc2(self.dropout(torch.relu(self.norm(self.fc1(x)))))


@register_model("resmlp")
class ResidualMLP(nn.Module):
    """Input projection, residual blocks, a final norm and a linear head returning logits."""

    def __init__(
        self, in_features: int, num_classes: int, hidden_size: int = 32, depth: int = 2, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.stem = nn.Linear(in_features, hidden_size)
        self.blocks = nn.Sequential(*(ResidualBlock(hidden_size, dropout) for _ in range(depth)))
        self.norm = nn.LayerNorm(hidden_size)
        self.head = nn.Linear(hidden_size, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.norm(self.blocks(self.stem(x))))
