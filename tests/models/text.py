"""Correct text models of other kinds than the examples: a bidirectional GRU over packed
sequences (recurrence), and a bag of embeddings with batch norm."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from .registry import register_model


@register_model("bigru", learning_rate=3e-3)
class BiGRU(nn.Module):
    """Embeddings -> packed bidirectional GRU (padding never enters the recurrence) -> last states -> head."""

    def __init__(
        self,
        vocab_size: int,
        max_length: int,
        pad_id: int,
        num_classes: int,
        hidden_size: int = 64,
        depth: int = 1,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        self.pad_id = pad_id
        self.embedding = nn.Embedding(vocab_size, hidden_size)
        self.gru = nn.GRU(hidden_size, hidden_size, num_layers=depth, batch_first=True, bidirectional=True)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(2 * hidden_size, num_classes)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        lengths = (ids != self.pad_id).sum(dim=1).clamp(min=1).cpu()
        packed = pack_padded_sequence(self.embedding(ids), lengths, batch_first=True, enforce_sorted=False)
        _, last = self.gru(packed)  # (layers * 2, N, hidden)
        return self.head(self.dropout(torch.cat([last[-2], last[-1]], dim=1)))


@register_model("bag_bn")
class BagOfEmbeddingsBN(nn.Module):
    """Mean of the real tokens' embeddings -> Linear -> BatchNorm -> ReLU -> Dropout -> head."""

    def __init__(
        self,
        vocab_size: int,
        max_length: int,
        pad_id: int,
        num_classes: int,
        hidden_size: int = 64,
        depth: int = 1,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        self.pad_id = pad_id
        self.embedding = nn.Embedding(vocab_size, hidden_size)
        layers: list[nn.Module] = []
        for _ in range(depth):
            layers += [nn.Linear(hidden_size, hidden_size), nn.BatchNorm1d(hidden_size), nn.ReLU(), nn.Dropout(dropout)]
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(hidden_size, num_classes)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        real = (ids != self.pad_id).unsqueeze(-1).float()
        mean = (self.embedding(ids) * real).sum(dim=1) / real.sum(dim=1).clamp(min=1.0)
        return self.head(self.body(mean))
