"""The training loop: epochs of optimiser steps, validation in eval mode, checkpoints, metrics.

Nothing here knows the task: it reaches the data through the names of ``task.py`` and trains
any registered model on (inputs, label) batches, so it stays when you replace the data and the model.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence, Sized
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, Subset

from ..checkpoint import (
    Checkpoint,
    CheckpointError,
    damaged_checkpoint,
    load_checkpoint,
    load_model_state,
    save_checkpoint,
)
from ..config import TrainConfig
from ..data import Preprocessor, load_examples
from ..files import write_json
from ..models import Pretrained, backbone_prefix, build_for, load_pretrained, load_pretrained_weights, move_inputs
from ..progress import progress
from ..task import Batch, Examples
from .card import write_card
from .distributed import (
    DistributedContext,
    all_reduce_sum,
    barrier,
    broadcast_from_main,
    distributed,
    distributed_world_size,
)
from .loader import GlobalBatchSampler, make_loader, worker_count
from .losses import classification_loss
from .metrics import SCORES, EpochRecord, ScoreSums
from .report import write_report
from .runs import claim_run_folder, point_latest_at, record_run
from .seed import capture_rng_state, deterministic_mode, restore_rng_state, seed_everything
from .split import Split, split_examples
from .tracking import require_tracking, track_run

CHECKPOINT_NAME = "checkpoint.pt"
METRICS_NAME = "metrics.json"


@dataclass
class TrainResult:
    model: nn.Module
    preprocessor: Preprocessor
    metrics: dict[str, Any]
    history: list[EpochRecord] = field(default_factory=list)
    checkpoint_path: Path | None = None
    split: Split | None = None


@contextmanager
def default_dtype(dtype: torch.dtype) -> Iterator[None]:
    """Within the block, new floating-point tensors (a model's weights) are ``dtype``."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def train_one_epoch(
    model: nn.Module,
    loader: DataLoader | Sequence[Batch],
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    optimizer: torch.optim.Optimizer,
    device: torch.device | str,
    *,
    scaler: torch.amp.GradScaler | None = None,
    epoch: int = 0,
) -> dict[str, float]:
    """One pass over ``loader`` in train mode: its scores (``metrics.SCORES``: the mean training
    ``loss`` per row, the ``accuracy``, the share of rows predicted right).

    A step whose loss or gradient is not finite (nan, inf) is never taken: the pass stops with
    a ``TrainingDiverged`` naming the epoch (``epoch``, from 0) and the step. Under a ``scaler``
    only the loss is checked: the scaler itself skips steps whose scaled gradients overflow.

    The scores are measured on the logits each step computes anyway, so in train mode (dropout on)
    and with the weights as they were before that step: a running figure, not a second pass.
    With a ``scaler`` the forward pass runs under autocast (mixed precision on CUDA).
    Under torchrun they are over the rows of every process, and each step's gradient is
    that of the mean loss over the whole global batch, however its rows fell to the processes.
    """
    device = torch.device(device)
    model.train()
    world_size = distributed_world_size()
    scores = ScoreSums(device)
    for step, (inputs, labels) in enumerate(loader):
        inputs, labels = move_inputs(model, inputs, device), labels.to(device)
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, enabled=scaler is not None):
            logits = model(inputs)
            loss = loss_fn(logits, labels)
        step_loss = loss
        if world_size > 1:  # DDP averages the processes' gradients: weigh each by its share of the rows
            (global_rows,) = all_reduce_sum([len(labels)], device)
            step_loss = loss * (len(labels) * world_size / global_rows)
        if scaler is None:
            step_loss.backward()
            _finite_or_stop(model, loss, epoch, step, len(loader))
            optimizer.step()
        else:
            scaler.scale(step_loss).backward()
            _finite_or_stop(model, loss, epoch, step, len(loader), gradients=False)
            scaler.step(optimizer)
            scaler.update()
        scores.add(logits, labels, loss)
    return scores.means()


class TrainingDiverged(ValueError):
    """A training step met a loss or gradient that is not finite: the run stops before that step."""


ADVICE = "Lower --learning-rate, or look for extreme values in the data."


def _finite_or_stop(
    model: nn.Module, loss: torch.Tensor, epoch: int, step: int, steps: int, *, gradients: bool = True
) -> None:
    """TrainingDiverged if the loss of a step or its gradient norm (read from the device at once)
    is nan or inf. Under DDP every process holds the averaged gradient, so every one
    stops at the same step (a process whose own loss alone is not finite stops, and torchrun ends the rest)."""
    norm = torch.zeros((), device=loss.device)
    if gradients:
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        if grads:
            norm = torch.nn.utils.get_total_norm(grads)
    loss_value, norm_value = torch.stack([loss.detach().float(), norm.float()]).tolist()
    if not (math.isfinite(loss_value) and math.isfinite(norm_value)):
        raise TrainingDiverged(
            f"training diverged in epoch {epoch + 1}, step {step + 1} of {steps}: the loss is {loss_value}, "
            f"the gradient norm {norm_value if gradients else 'unchecked'}; the step was not taken and "
            f"`latest` was not moved. {ADVICE}"
        )


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: Iterable[Batch],
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    device: torch.device | str,
) -> dict[str, float]:
    """The scores (``metrics.SCORES``: loss, accuracy) over ``loader`` in eval mode; the model's
    mode is restored afterwards.

    Summed batch by batch (``loss_fn`` must average over the rows of a batch, as the classification
    loss does), so memory holds one batch whatever the data's size. Under torchrun each process
    scores its shard and the sums are reduced over all of them.
    """
    device = torch.device(device)
    was_training = model.training
    model.eval()
    try:
        scores = ScoreSums(device)
        for inputs, target in loader:
            inputs, target = move_inputs(model, inputs, device), target.to(device)
            logits = model(inputs)
            scores.add(logits, target, loss_fn(logits, target))
        try:
            return scores.means()
        except ValueError:
            raise ValueError("cannot evaluate on an empty loader") from None
    finally:
        model.train(was_training)


class KeptWeights:
    """The weights a run keeps: those of the epoch with the lowest validation loss (``keep="best"``),
    or the last epoch's (``keep="last"``).

    The checkpoint's ``model_state`` holds the kept weights (what is scored and served),
    ``kept_epoch`` and ``kept_val_loss`` their epoch and validation loss; where the last epoch's
    weights are others, ``resume_model_state`` holds them too, so that a resumed run goes on from
    where training stopped.
    """

    def __init__(self, keep: str) -> None:
        self.keep = keep
        self.epoch: int | None = None  # the kept weights' epoch
        self.last: int | None = None  # the last epoch trained
        self.loss = math.inf
        self.state: dict[str, torch.Tensor] | None = None  # a copy of the kept weights (keep="best")

    def resume(self, checkpoint: Checkpoint) -> None:
        self.last = checkpoint.epoch
        self.epoch = checkpoint.served_epoch
        self.loss = checkpoint.kept_val_loss
        self.state = checkpoint.model_state if self.keep == "best" else None

    def offer(self, model: nn.Module, epoch: int, val_loss: float) -> None:
        """After ``epoch``: keep ``model``'s weights if they are the ones to keep."""
        self.last = epoch
        if self.keep == "last" or val_loss < self.loss:
            self.epoch, self.loss = epoch, val_loss
            if self.keep == "best":  # a copy: the model trains on past them
                self.state = {name: tensor.detach().to("cpu", copy=True) for name, tensor in model.state_dict().items()}

    def entries(self, model: nn.Module, epoch: int) -> dict[str, Any]:
        """The checkpoint's fields for the weights, after ``epoch``."""
        kept = {"kept_epoch": self.epoch, "kept_val_loss": self.loss}
        if self.epoch == epoch or self.state is None:
            return {"model_state": model.state_dict(), **kept}
        return {"model_state": self.state, **kept, "resume_model_state": model.state_dict()}

    def restore(self, model: nn.Module) -> None:
        """Put the kept weights back in ``model`` once training is over."""
        if self.epoch != self.last and self.state is not None:
            load_model_state(model, self.state)


def fit(config: TrainConfig, *, show_progress: bool | None = None) -> TrainResult:
    """Train as ``config`` says, into a run folder of its own (see ``runs.py``): ``config.json``,
    ``environment.json``, ``checkpoint.pt``, ``metrics.json``, the model card (``MODEL_CARD.md``,
    see ``card.py``) and, unless ``config.report`` is off, the report (``report.html`` and its
    pictures, see ``report.py``). ``output_dir`` names the folder;
    without it the run gets a new one under ``runs_dir``, and ``latest`` names it once it is done.

    Started by torchrun, every process runs this: the model is wrapped in
    DistributedDataParallel, each process takes its share of every global batch of
    ``batch_size`` rows, and rank 0 alone writes files.
    """
    with deterministic_mode(config.deterministic), distributed(config.device) as context:
        return _fit(config, context, show_progress)


def _fit(config: TrainConfig, context: DistributedContext, show_progress: bool | None) -> TrainResult:
    started = time.perf_counter()
    config, resumed = _settle_config(config, context)
    seed_everything(config.seed)  # the same on every process: same split, same initial weights
    # A pretrained model brings its architecture, weights and preprocessing (a resumed run has them).
    pretrained = load_pretrained(config.model, config.pretrained) if config.pretrained and not resumed else None
    data = _prepare_data(config, context, resumed, pretrained)
    model = _build_model(config, context, data.preprocessor, resumed, pretrained)
    named_by_run = config.output_dir is None  # a new folder under runs_dir, which `latest` will name
    output_dir = _claim_output_dir(config, context)
    config = replace(config, output_dir=str(output_dir))
    if context.is_main:
        record_run(output_dir, config)
    checkpoint_path = output_dir / CHECKPOINT_NAME
    history = _train_epochs(config, context, data, model, checkpoint_path, show_progress)
    model.kept.restore(model.module)
    metrics = _score(config, context, data, model, history, started)
    if context.is_main:
        write_json(metrics, output_dir / METRICS_NAME)
        _describe(config, data, model.module, context.device, output_dir, history, metrics)
        if named_by_run:
            point_latest_at(output_dir)
        _track(config, output_dir, history, metrics)
    return TrainResult(
        model.module,
        data.preprocessor,
        metrics,
        history,
        checkpoint_path if checkpoint_path.exists() else None,
        data.split,
    )


def _settle_config(config: TrainConfig, context: DistributedContext) -> tuple[TrainConfig, Checkpoint | None]:
    """Refuse a run the processes or the device cannot make; with ``--resume``, the stored run's
    settings and its checkpoint."""
    if config.batch_size % context.world_size:
        raise ValueError(f"batch_size {config.batch_size} must be divisible by the {context.world_size} processes")
    if config.amp and context.device.type != "cuda":
        raise ValueError(f"mixed precision (amp) needs a CUDA device, this run is on {context.device}")
    require_tracking(config)
    barrier()  # a checkpoint to resume from is complete before anyone reads it
    if not config.resume:
        return config, None
    resumed = load_checkpoint(config.resume)
    with damaged_checkpoint(config.resume):
        return _resume_config(config, resumed), resumed


@dataclass
class RunData:
    """A run's data: the examples, their split, the preprocessing fitted on the training split (or
    resumed), and per split its dataset and loader (under torchrun, this process's share)."""

    split: Split
    preprocessor: Preprocessor
    datasets: dict[str, Dataset]
    loaders: dict[str, DataLoader]
    workers: int


def _prepare_data(
    config: TrainConfig, context: DistributedContext, resumed: Checkpoint | None, pretrained: Pretrained | None
) -> RunData:
    examples = load_examples(config.data)
    split = split_examples(examples, config.val_fraction, config.test_fraction, config.seed)
    if resumed is not None:
        with damaged_checkpoint(config.resume or ""):
            preprocessor = Preprocessor.from_state_dict(resumed.preprocessor)
    else:
        declared = pretrained.preprocessing if pretrained is not None else {}
        preprocessor = _fit_preprocessor(config, examples.subset(split.train), context, declared)
    workers = worker_count(config.num_workers)
    loaders: dict[str, DataLoader] = {}
    datasets: dict[str, Dataset] = {}
    for name, rows in (("train", split.train), ("val", split.val), ("test", split.test)):
        dataset: Dataset = preprocessor.dataset(examples.subset(rows), train=name == "train", seed=config.seed)
        datasets[name] = dataset
        if name != "train":  # every process scores its own rows, without the padding a sampler would add
            dataset = Subset(dataset, range(context.rank, len(cast(Sized, dataset)), context.world_size))
        loaders[name] = make_loader(
            dataset,
            config.batch_size,
            shuffle=name == "train",
            seed=config.seed,
            num_workers=workers,
            num_replicas=context.world_size if name == "train" else 1,
            rank=context.rank if name == "train" else 0,
            collate_fn=preprocessor.collate,
            persistent=name != "test",  # train and val are read every epoch, test once
            pin_memory=context.device.type == "cuda",
        )
    return RunData(split, preprocessor, datasets, loaders, workers)


@dataclass
class RunModel:
    """The model and what trains it: ``module`` (what is saved and served), ``trained`` (the same
    model, wrapped in DistributedDataParallel under torchrun), its optimiser, loss, gradient scaler
    (mixed precision), the weights it keeps, the first epoch to train and the history so far."""

    module: nn.Module
    trained: nn.Module
    options: dict[str, Any]  # what the module was built with besides its input sizes (the checkpoint's)
    optimizer: torch.optim.Optimizer
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    scaler: torch.amp.GradScaler | None
    kept: KeptWeights
    start_epoch: int = 0
    history: list[EpochRecord] = field(default_factory=list)


def _build_model(
    config: TrainConfig,
    context: DistributedContext,
    preprocessor: Preprocessor,
    resumed: Checkpoint | None,
    pretrained: Pretrained | None,
) -> RunModel:
    """The registered model built for ``preprocessor`` in the run's precision (from its pretrained
    weights where it starts from some), its optimiser and the rest; with a checkpoint to resume
    from, everything as it was after its last epoch."""
    device = context.device
    dtype = getattr(torch, config.precision)
    if resumed is not None:
        options = dict(resumed.model_options)
    else:
        options = {**config.model_options(), **(pretrained.model_options if pretrained is not None else {})}
    with default_dtype(dtype):  # weights drawn in the run's precision, not rounded from float32 draws
        model = build_for(config.model, preprocessor, **options)
    if pretrained is not None:
        load_pretrained_weights(model, config.model, pretrained)
    model.to(device, dtype=dtype)
    optimizer = torch.optim.AdamW(_parameter_groups(config, model), weight_decay=config.weight_decay)
    scaler = torch.amp.GradScaler(device.type) if config.amp else None
    run = RunModel(model, model, options, optimizer, classification_loss(), scaler, KeptWeights(config.keep))
    if resumed is not None:
        with damaged_checkpoint(config.resume or ""):
            load_model_state(model, resumed.resume_model_state or resumed.model_state)
            run.kept.resume(resumed)
            optimizer.load_state_dict(resumed.optimizer_state)
            if scaler is not None and resumed.scaler_state:
                scaler.load_state_dict(resumed.scaler_state)
            restore_rng_state(resumed.rng_state)
            run.history = [EpochRecord.from_dict(entry) for entry in resumed.history]
        run.start_epoch = resumed.epoch + 1
    if context.enabled:
        run.trained = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    return run


def _train_epochs(
    config: TrainConfig,
    context: DistributedContext,
    data: RunData,
    model: RunModel,
    checkpoint_path: Path,
    show_progress: bool | None,
) -> list[EpochRecord]:
    """Train the epochs left, validate after each and (rank 0) save the checkpoint; the history."""
    history = list(model.history)
    device, train_loader = context.device, data.loaders["train"]
    epochs = progress(
        range(model.start_epoch, config.epochs),
        total=config.epochs - model.start_epoch,
        desc="train",
        enabled=show_progress if context.is_main else False,
    )
    for epoch in epochs:
        cast(GlobalBatchSampler, train_loader.batch_sampler).set_epoch(epoch)
        if hasattr(train_loader.dataset, "set_epoch"):  # augmentation drawn per epoch, not per process
            train_loader.dataset.set_epoch(epoch)
        train = train_one_epoch(
            model.trained, train_loader, model.loss_fn, model.optimizer, device, scaler=model.scaler, epoch=epoch
        )
        val = evaluate(model.module, data.loaders["val"], model.loss_fn, device)
        if not math.isfinite(val["loss"]):
            raise TrainingDiverged(
                f"training diverged in epoch {epoch + 1}: the validation loss is {val['loss']} "
                f"(the training loss {train['loss']}); `latest` was not moved. {ADVICE}"
            )
        history.append(EpochRecord(epoch, train, val))
        model.kept.offer(model.module, epoch, val["loss"])
        if hasattr(epochs, "set_postfix"):
            epochs.set_postfix(loss=f"{train['loss']:.3f}", val_acc=f"{val['accuracy']:.3f}")
        if context.is_main:
            checkpoint = Checkpoint(
                model_name=config.model,
                model_options=model.options,
                preprocessor=data.preprocessor.state_dict(),
                config=config.to_dict(),
                epoch=epoch,
                optimizer_state=model.optimizer.state_dict(),
                rng_state=capture_rng_state(),
                scaler_state=model.scaler.state_dict() if model.scaler is not None else {},
                history=[record.to_dict() for record in history],
                **model.kept.entries(model.module, epoch),
            )
            save_checkpoint(checkpoint, checkpoint_path)
        barrier()
    return history


def _score(
    config: TrainConfig,
    context: DistributedContext,
    data: RunData,
    model: RunModel,
    history: list[EpochRecord],
    started: float,
) -> dict[str, Any]:
    """What ``metrics.json`` holds: the kept weights' scores on the test and validation splits and
    in their training epoch (``test_<score>``, ``val_<score>``, ``train_<score>``), and the run."""
    test = evaluate(model.module, data.loaders["test"], model.loss_fn, context.device)
    val = evaluate(model.module, data.loaders["val"], model.loss_fn, context.device)
    kept = next((record for record in history if record.epoch == model.kept.epoch), EpochRecord(-1))
    split = data.split
    return {
        **{f"test_{name}": test[name] for name in SCORES},
        **{f"val_{name}": val[name] for name in SCORES},
        **{f"train_{name}": kept.train.get(name) for name in SCORES},
        "epochs": config.epochs,
        "kept_epoch": model.kept.epoch + 1 if model.kept.epoch is not None else None,
        "model": config.model,
        "seed": config.seed,
        "processes": context.world_size,
        "device": str(context.device),
        "rows": {"train": len(split.train), "val": len(split.val), "test": len(split.test)},
        "seconds": round(time.perf_counter() - started, 3),
    }


@torch.no_grad()
def predict_probabilities(
    model: nn.Module, loader: DataLoader, device: torch.device | str
) -> tuple[torch.Tensor, torch.Tensor]:
    """(class probabilities (N, C), labels (N,)) over ``loader`` in eval mode, on the CPU; the
    model's mode is restored afterwards. In this process only: no reduction under torchrun."""
    device = torch.device(device)
    was_training = model.training
    model.eval()
    try:
        probabilities, labels = [], []
        for inputs, target in loader:
            probabilities.append(torch.softmax(model(move_inputs(model, inputs, device)).float(), dim=1).cpu())
            labels.append(target.cpu())
        if not labels:
            raise ValueError("cannot predict on an empty loader")
        return torch.cat(probabilities), torch.cat(labels)
    finally:
        model.train(was_training)


def _describe(
    config: TrainConfig,
    data: RunData,
    model: nn.Module,
    device: torch.device,
    output_dir: Path,
    history: list[EpochRecord],
    metrics: dict[str, Any],
) -> None:
    """Write the run's model card (``card.py``) and, unless ``config.report`` is off, its report
    (``report.py``), from the whole test split scored here once more: under torchrun each process
    holds only its share of it, and rank 0 alone calls this.

    Neither that cannot be written fails the run: each is a warning on stderr. The checkpoint and
    metrics are written already and they are the run; the card and the report are views of them.
    """
    try:
        test_loader = make_loader(
            data.datasets["test"],
            config.batch_size,
            shuffle=False,
            seed=config.seed,
            num_workers=data.workers,
            collate_fn=data.preprocessor.collate,
        )
        probabilities, labels = predict_probabilities(model, test_loader, device)
    except Exception as err:  # whatever broke, the run itself stands
        _warn(output_dir, "model card or training report", err)
        return
    views: list[tuple[str, Callable[..., Path]]] = [("model card", write_card)]
    if config.report:
        views.append(("training report", partial(write_report, history=history)))
    classes = data.preprocessor.classes
    for what, write in views:
        try:
            write(output_dir, metrics=metrics, classes=classes, probabilities=probabilities, labels=labels)
        except Exception as err:  # a full disk, a font, a bug: the run itself stands
            _warn(output_dir, what, err)


def _track(config: TrainConfig, output_dir: Path, history: list[EpochRecord], metrics: dict[str, Any]) -> None:
    """Log the finished run to MLflow (``tracking.py``); where that fails, a warning: the run stands."""
    try:
        track_run(config, output_dir, history, metrics)
    except Exception as err:  # a store that cannot be reached or written
        print(
            f"warning: {output_dir} was not tracked in MLflow ({type(err).__name__}: {_first_line(err)}); "
            "the run folder holds all of it",
            file=sys.stderr,
        )


def _parameter_groups(config: TrainConfig, model: nn.Module) -> list[dict[str, Any]]:
    """The optimiser's parameters: one group at ``learning_rate``; for a model started from a
    pretrained backbone (``--pretrained``), the backbone's in a group of their own at ``backbone_rate()`` (none with
    ``--freeze-backbone``: the backbone is frozen, ``requires_grad=False``, and stays as loaded)."""
    prefix = backbone_prefix(config.model)
    if prefix is None or config.pretrained is None:  # trained from scratch: one rate for every weight
        return [{"params": list(model.parameters()), "lr": config.learning_rate}]
    backbone = [p for name, p in model.named_parameters() if name.startswith(prefix)]
    head = [p for name, p in model.named_parameters() if not name.startswith(prefix)]
    if config.freeze_backbone:
        for parameter in backbone:
            parameter.requires_grad_(False)
        return [{"params": head, "lr": config.learning_rate}]
    return [{"params": backbone, "lr": config.backbone_rate()}, {"params": head, "lr": config.learning_rate}]


def _first_line(err: Exception) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _warn(output_dir: Path, what: str, err: Exception) -> None:
    print(
        f"warning: no {what} in {output_dir} ({type(err).__name__}: {err}); "
        "the checkpoint and metrics.json are written",
        file=sys.stderr,
    )


def _fit_preprocessor(
    config: TrainConfig, train: Examples, context: DistributedContext, declared: dict[str, Any]
) -> Preprocessor:
    """Fit the preprocessing on the training split in rank 0 alone (a streamed pass over the data,
    or a sample of it) and give every process its state (or rank 0's error): the other processes
    read none of the data to fit it. ``declared`` is what a pretrained model brings (its tokenizer,
    its pixel statistics): used as it is, not fitted."""
    state: dict[str, Any] | Exception
    try:
        options = {**config.preprocessing_options(), **declared}
        state = Preprocessor(**options).fit(train).state_dict() if context.is_main else {}
    except (ValueError, OSError) as err:
        state = err
    state = broadcast_from_main(state)
    if isinstance(state, Exception):
        raise state
    return Preprocessor.from_state_dict(state)


def _claim_output_dir(config: TrainConfig, context: DistributedContext) -> Path:
    """Rank 0 creates the run's folder; every process learns its name (or rank 0's error)."""
    claimed: Path | Exception
    try:
        claimed = claim_run_folder(config) if context.is_main else Path()
    except (ValueError, OSError) as err:
        claimed = err
    claimed = broadcast_from_main(claimed)
    if isinstance(claimed, Exception):
        raise claimed
    return claimed


def _resume_config(config: TrainConfig, checkpoint: Checkpoint) -> TrainConfig:
    """Continue the stored run: its settings, with this run's epochs, output folder and device."""
    stored = TrainConfig.from_dict(checkpoint.config)
    if checkpoint.epoch + 1 >= config.epochs:
        raise CheckpointError(
            f"checkpoint already holds {checkpoint.epoch + 1} epochs; ask for more than that with --epochs"
        )
    return replace(
        stored,
        epochs=config.epochs,
        output_dir=config.output_dir,
        runs_dir=config.runs_dir,
        name=config.name,
        device=config.device,
        resume=config.resume,
        num_workers=config.num_workers,
        report=config.report,
    )
