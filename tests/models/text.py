"""Correct text models of other kinds than the examples: a bidirectional GRU over packed
sequences (recurrence), a bag of embeddings with batch norm, torch's own TransformerEncoder, and a
Hugging Face BERT built from a config (``pip install transformers``)."""

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


@register_model("torch_encoder", learning_rate=1e-3)
class TorchEncoder(nn.Module):
    """torch's own nn.TransformerEncoder (its fast path in eval mode), padding masked, mean of the real
    tokens; token-type embeddings as BERT has them (every id of type 0, the padding id's value)."""

    def __init__(
        self,
        vocab_size: int,
        max_length: int,
        pad_id: int,
        num_classes: int,
        hidden_size: int = 32,
        depth: int = 2,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.pad_id = pad_id
        self.embedding = nn.Embedding(vocab_size, hidden_size)
        self.position = nn.Embedding(max_length, hidden_size)
        self.token_type = nn.Embedding(2, hidden_size)
        layer = nn.TransformerEncoderLayer(hidden_size, 4, 2 * hidden_size, dropout, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, depth)
        self.head = nn.Linear(hidden_size, num_classes)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        padding = ids == self.pad_id
        positions = torch.arange(ids.shape[1], device=ids.device)
        embedded = self.embedding(ids) + self.position(positions) + self.token_type(torch.zeros_like(ids))
        states = self.encoder(embedded, src_key_padding_mask=padding)
        real = (~padding).unsqueeze(-1).to(states.dtype)
        return self.head((states.nan_to_num(0.0) * real).sum(dim=1) / real.sum(dim=1).clamp(min=1.0))


@register_model("hf_bert", learning_rate=1e-3)
class HuggingFaceBert(nn.Module):
    """A Hugging Face ``BertModel`` from a config (random weights): token, position and token-type
    embeddings, attention masked where the ids are padding, the first position's state to the head."""

    def __init__(
        self,
        vocab_size: int,
        max_length: int,
        pad_id: int,
        num_classes: int,
        hidden_size: int = 32,
        depth: int = 2,
        dropout: float = 0.1,
    ) -> None:
        from transformers import BertConfig, BertModel  # imported when built: the library is optional

        super().__init__()
        self.pad_id = pad_id
        config = BertConfig(
            vocab_size=vocab_size,
            hidden_size=hidden_size,
            num_hidden_layers=depth,
            num_attention_heads=4,
            intermediate_size=2 * hidden_size,
            max_position_embeddings=max_length,
            type_vocab_size=2,
            pad_token_id=pad_id,
            hidden_dropout_prob=dropout,
            attention_probs_dropout_prob=dropout,
        )
        self.bert = BertModel(config, add_pooling_layer=False)
        self.head = nn.Linear(hidden_size, num_classes)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        mask = (ids != self.pad_id).long()
        states = self.bert(input_ids=ids, attention_mask=mask, token_type_ids=torch.zeros_like(ids)).last_hidden_state
        return self.head(states[:, 0])
