"""Three correct tabular architectures of other kinds than the examples, registered as the README says.

- rtdl_mlp: the MLP baseline of Gorishniy et al. (2021): Linear -> ReLU -> Dropout blocks, no
  hidden_size/depth knobs (fixed widths), so options it is given are ignored.
- rtdl_resnet: the ResNet of the same paper: BatchNorm -> Linear -> ReLU -> Dropout -> Linear
  residual blocks, a BatchNorm -> ReLU -> Linear head.
- ft_attention: a small FT-Transformer: each feature a token (per-feature linear embedding),
  a [CLS] token, pre-norm multi-head self-attention blocks, the head on [CLS].
"""

from __future__ import annotations

import torch
from torch import nn

from .registry import register_model


@register_model("rtdl_mlp")
class RTDLMLP(nn.Module):
    def __init__(self, in_features: int, num_classes: int, dropout: float = 0.1, **_ignored) -> None:
        super().__init__()
        self.blocks = nn.Sequential(
            nn.Linear(in_features, 128),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(128, 128),
            nn.ReLU(),
            nn.Dropout(dropout),
        )
        self.head = nn.Linear(128, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(x))


class ResNetBlock(nn.Module):
    def __init__(self, width: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.norm = nn.BatchNorm1d(width)
        self.linear1 = nn.Linear(width, hidden)
        self.dropout1 = nn.Dropout(dropout)
        self.linear2 = nn.Linear(hidden, width)
        self.dropout2 = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.dropout1(torch.relu(self.linear1(self.norm(x))))
        return x + self.dropout2(self.linear2(z))


@register_model("rtdl_resnet")
class RTDLResNet(nn.Module):
    def __init__(
        self, in_features: int, num_classes: int, hidden_size: int = 64, depth: int = 2, dropout: float = 0.1
    ) -> None:
        super().__init__()
        self.first = nn.Linear(in_features, hidden_size)
        self.blocks = nn.Sequential(*(ResNetBlock(hidden_size, 2 * hidden_size, dropout) for _ in range(depth)))
        self.head = nn.Sequential(nn.BatchNorm1d(hidden_size), nn.ReLU(), nn.Linear(hidden_size, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.first(x)))


@register_model("ft_attention", learning_rate=3e-3)
class FTAttention(nn.Module):
    def __init__(
        self, in_features: int, num_classes: int, hidden_size: int = 32, depth: int = 2, dropout: float = 0.1
    ) -> None:
        super().__init__()
        d = max(8, hidden_size - hidden_size % 4)
        self.weight = nn.Parameter(torch.randn(in_features, d) / d**0.5)
        self.bias = nn.Parameter(torch.zeros(in_features, d))
        self.cls = nn.Parameter(torch.randn(1, 1, d) / d**0.5)
        layer = nn.TransformerEncoderLayer(
            d, nhead=4, dim_feedforward=2 * d, dropout=dropout, batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, num_layers=depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = x.unsqueeze(-1) * self.weight + self.bias
        tokens = torch.cat([self.cls.expand(len(x), -1, -1), tokens], dim=1)
        return self.head(self.norm(self.encoder(tokens)[:, 0]))
