"""A correct image model of another kind than the examples: a tiny Vision Transformer (attention)."""

from __future__ import annotations

import torch
from torch import nn

from .registry import register_model


@register_model("vit", learning_rate=3e-3)
class TinyViT(nn.Module):
    """2x2 patches -> linear embedding + learned positions, [CLS], pre-norm encoder, head on [CLS]."""

    def __init__(
        self,
        in_channels: int,
        height: int,
        width: int,
        num_classes: int,
        hidden_size: int = 32,
        depth: int = 2,
        dropout: float = 0.1,
        patch: int = 2,
    ) -> None:
        super().__init__()
        d = max(8, hidden_size - hidden_size % 4)
        self.embed = nn.Conv2d(in_channels, d, kernel_size=patch, stride=patch)
        tokens = (height // patch) * (width // patch)
        self.position = nn.Parameter(torch.randn(1, tokens + 1, d) * 0.02)
        self.cls = nn.Parameter(torch.randn(1, 1, d) * 0.02)
        layer = nn.TransformerEncoderLayer(
            d, nhead=4, dim_feedforward=2 * d, dropout=dropout, batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, num_layers=depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.embed(x).flatten(2).transpose(1, 2)
        tokens = torch.cat([self.cls.expand(len(x), -1, -1), tokens], dim=1) + self.position
        return self.head(self.norm(self.encoder(tokens)[:, 0]))
