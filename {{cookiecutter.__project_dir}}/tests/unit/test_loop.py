"""The pieces of the training loop that take no optimiser step: validation, the epoch's figures, the seeded
loader, the device.

The steps themselves are tested in ``tests/integration/test_training_steps.py``.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from {{ cookiecutter.package_name }}.testing import assert_model_unchanged
from {{ cookiecutter.package_name }}.training import (
    TrainingDiverged,
    accuracy,
    classification_loss,
    evaluate,
    make_loader,
    resolve_device,
    train_one_epoch,
)


@pytest.fixture
def tiny_loader(tiny_dataset, preprocessor):
    return make_loader(tiny_dataset, batch_size=8, shuffle=False, seed=0, collate_fn=preprocessor.collate)


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_evaluate_leaves_mode_weights_and_batch_norm_statistics_unchanged(
    model_name, make_model, tiny_loader, device, mode
):
    # Batch-norm running statistics are buffers: a forward pass in train mode would move them.
    model = make_model(model_name, dropout=0.2).train(mode == "train")
    with assert_model_unchanged(model, "evaluate()"):
        evaluate(model, tiny_loader, classification_loss(), device)


def test_evaluate_runs_in_eval_mode_so_repeated_calls_agree(model_name, make_model, tiny_loader, device):
    model = make_model(model_name, dropout=0.5).train()
    first = evaluate(model, tiny_loader, classification_loss(), device)
    second = evaluate(model, tiny_loader, classification_loss(), device)
    assert first == second, f"two evaluations of the same model differ: {first} vs {second} (dropout on?)"


def test_evaluate_reports_the_loss_and_accuracy_over_all_rows(tiny_model, tiny_loader, tiny_batch, device):
    features, labels = tiny_batch
    tiny_model.eval()
    with torch.no_grad():
        logits = tiny_model(features)
    expected_loss = classification_loss()(logits, labels).item()
    result = evaluate(tiny_model, tiny_loader, classification_loss(), device)
    assert result["loss"] == pytest.approx(expected_loss, rel=1e-5), f"loss {result['loss']}, by hand {expected_loss}"
    assert result["accuracy"] == pytest.approx(accuracy(logits, labels)), f"accuracy {result['accuracy']}"


class FrozenOptimizer:
    """Takes the steps of an optimiser and changes nothing (the unit tier builds no torch optimiser)."""

    def zero_grad(self, set_to_none: bool = True) -> None:
        pass

    def step(self) -> None:
        pass


class SaysItsInput(nn.Module):
    """Predicts the class written in each row's only feature, whatever its (zero) weights."""

    def __init__(self, classes: int) -> None:
        super().__init__()
        self.classes = classes
        self.offset = nn.Parameter(torch.zeros(classes))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return nn.functional.one_hot(inputs[:, 0].long(), self.classes).float() * 10 + self.offset


def test_the_training_accuracy_is_the_share_of_the_epoch_s_rows_predicted_right():
    # 3 of 4 right in the first batch, 0 of 2 in the second: 3 of 6 rows, where the mean of the
    # batches' accuracies would say 0.375.
    batches = [
        (torch.tensor([[0.0], [1.0], [2.0], [0.0]]), torch.tensor([0, 1, 2, 1])),
        (torch.tensor([[1.0], [1.0]]), torch.tensor([0, 2])),
    ]
    result = train_one_epoch(SaysItsInput(3), batches, classification_loss(), FrozenOptimizer(), "cpu")
    assert result["accuracy"] == pytest.approx(0.5), f"training accuracy {result['accuracy']}, 3 of 6 rows are right"
    assert result["loss"] > 0, result


class CountingOptimizer(FrozenOptimizer):
    def __init__(self) -> None:
        self.steps = 0

    def step(self) -> None:
        self.steps += 1


BATCHES = [(torch.tensor([[0.0], [1.0]]), torch.tensor([0, 1]))] * 3


def nan_from_the_second_call(loss_fn):
    calls = []

    def loss(logits, labels):
        calls.append(1)
        return loss_fn(logits, labels) * (float("nan") if len(calls) >= 2 else 1.0)

    return loss


def test_a_nan_loss_stops_the_epoch_before_its_step_naming_epoch_and_step():
    optimizer = CountingOptimizer()
    loss_fn = nan_from_the_second_call(classification_loss())
    with pytest.raises(TrainingDiverged, match=r"epoch 3, step 2 of 3: the loss is nan"):
        train_one_epoch(SaysItsInput(2), BATCHES, loss_fn, optimizer, "cpu", epoch=2)
    assert optimizer.steps == 1, f"{optimizer.steps} optimiser steps: a step with a nan loss was taken"


def test_a_finite_loss_with_a_nan_gradient_stops_the_epoch_before_its_step():
    # sqrt has an infinite slope at 0 and abs a zero one: the loss is 0, its gradient nan.
    def loss_fn(logits, labels):
        return classification_loss()(logits, labels) * 0 + (logits - logits.detach()).abs().sum().sqrt()

    optimizer = CountingOptimizer()
    with pytest.raises(TrainingDiverged, match=r"step 1 of 3: the loss is 0.0, the gradient norm nan"):
        train_one_epoch(SaysItsInput(2), BATCHES, loss_fn, optimizer, "cpu")
    assert optimizer.steps == 0, "a step with a nan gradient was taken"


def loader_order(loader, epoch: int) -> list[int]:
    loader.batch_sampler.set_epoch(epoch)
    return [int(i) for _, labels in loader for i in labels]


def numbered(rows: int) -> TensorDataset:
    """A dataset whose labels are the row numbers, to read the order a loader visits."""
    return TensorDataset(torch.zeros(rows, 1), torch.arange(rows))


def test_loader_order_depends_only_on_seed_and_epoch():
    dataset = numbered(24)
    first = make_loader(dataset, batch_size=5, shuffle=True, seed=7)
    second = make_loader(dataset, batch_size=5, shuffle=True, seed=7)
    torch.manual_seed(1234)  # the global generator must not matter
    assert loader_order(first, 3) == loader_order(second, 3), "same seed and epoch, different order"
    assert loader_order(first, 3) != loader_order(first, 4), "epochs 3 and 4 have the same order: set_epoch ignored"
    other = make_loader(dataset, batch_size=5, shuffle=True, seed=8)
    assert loader_order(first, 3) != loader_order(other, 3), "seeds 7 and 8 give the same order"


def test_loader_visits_every_row_once_per_epoch():
    loader = make_loader(numbered(24), batch_size=5, shuffle=True, seed=0)
    assert sorted(loader_order(loader, 0)) == list(range(24))


@pytest.mark.parametrize("processes", [2, 3])
def test_processes_share_each_global_batch_and_every_row_is_seen_exactly_once(processes):
    rows, batch_size = 53, 8  # 7 global batches of 7 or 8 rows
    single = make_loader(numbered(rows), batch_size=batch_size, shuffle=True, seed=5)
    shares = [
        make_loader(numbered(rows), batch_size=batch_size, shuffle=True, seed=5, num_replicas=processes, rank=rank)
        for rank in range(processes)
    ]
    for loader in (single, *shares):
        loader.batch_sampler.set_epoch(2)
    single_batches = [sorted(labels.tolist()) for _, labels in single]
    rank_batches = [[labels.tolist() for _, labels in loader] for loader in shares]
    assert {len(batches) for batches in rank_batches} == {len(single_batches)}, "processes take different step counts"
    for step, expected in enumerate(single_batches):
        together = sorted(row for batches in rank_batches for row in batches[step])
        assert together == expected, f"step {step}: {processes} processes see {together}, one process sees {expected}"
    seen = sorted(row for batches in rank_batches for batch in batches for row in batch)
    assert seen == list(range(rows)), f"rows seen this epoch by {processes} processes: repeated or missing rows"


def test_cpu_device_resolves_and_missing_cuda_is_a_clear_error(monkeypatch):
    assert resolve_device("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(ValueError, match="no CUDA device"):
        resolve_device("cuda")
