"""The training loop: epochs of optimiser steps, validation in eval mode, checkpoints, metrics.

Nothing here knows the example task: it trains any registered model on (features, label)
batches, so it stays when you replace the data and the model.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from ..config import TrainConfig
from ..data import Preprocessor, TabularDataset, load_table, stratified_split
from ..files import write_json
from ..models import build_model
from .checkpoint import FORMAT_VERSION, CheckpointError, load_checkpoint, load_model_state, save_checkpoint
from .loader import make_loader
from .losses import classification_loss
from .metrics import accuracy
from .progress import progress
from .seed import capture_rng_state, deterministic_mode, restore_rng_state, seed_everything

CHECKPOINT_NAME = "checkpoint.pt"
METRICS_NAME = "metrics.json"


@dataclass
class TrainResult:
    model: nn.Module
    preprocessor: Preprocessor
    metrics: dict[str, Any]
    history: list[dict[str, float]] = field(default_factory=list)
    checkpoint_path: Path | None = None


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when present; asking for CUDA where there is none is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device '{name}' requested but no CUDA device is visible")
    return device


def train_one_epoch(
    model: nn.Module, loader: DataLoader, loss_fn: nn.Module, optimizer: torch.optim.Optimizer, device: torch.device
) -> float:
    """One pass over ``loader`` in train mode; returns the mean training loss per row."""
    model.train()
    total, rows = 0.0, 0
    for features, labels in loader:
        features, labels = features.to(device), labels.to(device)
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(features), labels)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(labels)
        rows += len(labels)
    return total / max(rows, 1)


@torch.no_grad()
def evaluate(model: nn.Module, loader: DataLoader, loss_fn: nn.Module, device: torch.device) -> dict[str, float]:
    """Loss and accuracy over ``loader`` in eval mode; the model's mode is restored afterwards."""
    was_training = model.training
    model.eval()
    try:
        logits, labels = [], []
        for features, target in loader:
            logits.append(model(features.to(device)))
            labels.append(target.to(device))
        all_logits, all_labels = torch.cat(logits), torch.cat(labels)
        return {"loss": loss_fn(all_logits, all_labels).item(), "accuracy": accuracy(all_logits, all_labels)}
    finally:
        model.train(was_training)


def fit(config: TrainConfig, *, show_progress: bool | None = None) -> TrainResult:
    """Train as ``config`` says, writing ``checkpoint.pt`` and ``metrics.json`` to its output_dir."""
    with deterministic_mode(config.deterministic):
        return _fit(config, show_progress)


def _fit(config: TrainConfig, show_progress: bool | None) -> TrainResult:
    started = time.perf_counter()
    device = resolve_device(config.device)
    resumed = load_checkpoint(config.resume) if config.resume else None
    if resumed is not None:
        config = _resume_config(config, resumed)
    seed_everything(config.seed)

    table = load_table(config.data)
    split = stratified_split(table[Preprocessor().target], config.val_fraction, config.test_fraction, config.seed)
    if resumed is not None:
        preprocessor = Preprocessor.from_state_dict(resumed["preprocessor"])
    else:
        preprocessor = Preprocessor().fit(table.iloc[split.train])
    loaders = {}
    for name, rows in (("train", split.train), ("val", split.val), ("test", split.test)):
        part = table.iloc[rows]
        dataset = TabularDataset(preprocessor.transform(part), preprocessor.encode_labels(part[preprocessor.target]))
        loaders[name] = make_loader(
            dataset, config.batch_size, shuffle=name == "train", seed=config.seed, num_workers=config.num_workers
        )

    model = build_model(config.model, preprocessor.num_features, len(preprocessor.classes), **config.model_options())
    model.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    loss_fn = classification_loss()
    start_epoch = 0
    if resumed is not None:
        load_model_state(model, resumed["model_state"])
        optimizer.load_state_dict(resumed["optimizer_state"])
        restore_rng_state(resumed["rng_state"])
        start_epoch = resumed["epoch"] + 1

    output_dir = Path(config.output_dir)
    checkpoint_path = output_dir / CHECKPOINT_NAME
    history: list[dict[str, float]] = list(resumed.get("history", [])) if resumed else []
    epochs = progress(
        range(start_epoch, config.epochs), total=config.epochs - start_epoch, desc="train", enabled=show_progress
    )
    for epoch in epochs:
        loaders["train"].sampler.set_epoch(epoch)
        train_loss = train_one_epoch(model, loaders["train"], loss_fn, optimizer, device)
        val = evaluate(model, loaders["val"], loss_fn, device)
        history.append(
            {"epoch": epoch, "train_loss": train_loss, "val_loss": val["loss"], "val_accuracy": val["accuracy"]}
        )
        if hasattr(epochs, "set_postfix"):
            epochs.set_postfix(loss=f"{train_loss:.3f}", val_acc=f"{val['accuracy']:.3f}")
        save_checkpoint(
            {
                "format_version": FORMAT_VERSION,
                "model_name": config.model,
                "model_options": config.model_options(),
                "model_state": model.state_dict(),
                "optimizer_state": optimizer.state_dict(),
                "epoch": epoch,
                "rng_state": capture_rng_state(),
                "config": config.to_dict(),
                "preprocessor": preprocessor.state_dict(),
                "history": history,
            },
            checkpoint_path,
        )

    test = evaluate(model, loaders["test"], loss_fn, device)
    val = evaluate(model, loaders["val"], loss_fn, device)
    metrics = {
        "test_accuracy": test["accuracy"],
        "test_loss": test["loss"],
        "val_accuracy": val["accuracy"],
        "val_loss": val["loss"],
        "train_loss": history[-1]["train_loss"] if history else None,
        "epochs": config.epochs,
        "model": config.model,
        "seed": config.seed,
        "rows": {"train": len(split.train), "val": len(split.val), "test": len(split.test)},
        "seconds": round(time.perf_counter() - started, 3),
    }
    write_json(metrics, output_dir / METRICS_NAME)
    return TrainResult(model, preprocessor, metrics, history, checkpoint_path if checkpoint_path.exists() else None)


def _resume_config(config: TrainConfig, checkpoint: dict[str, Any]) -> TrainConfig:
    """Continue the stored run: its settings, with this run's epochs, output folder and device."""
    stored = TrainConfig.from_dict(checkpoint["config"])
    if checkpoint["epoch"] + 1 > config.epochs:
        raise CheckpointError(
            f"checkpoint already holds {checkpoint['epoch'] + 1} epochs; ask for more than that with --epochs"
        )
    return replace(
        stored,
        epochs=config.epochs,
        output_dir=config.output_dir,
        device=config.device,
        resume=config.resume,
        num_workers=config.num_workers,
    )
