"""The shared ML assertions fail, with a message that names the culprit, on the bugs they exist for.

Each test hands a helper a small model with one deliberate bug. If a helper went blind, every
contract test built on it would pass vacuously; these tests keep that from happening silently.
The helpers that take optimiser steps are checked in the integration tier.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from {{ cookiecutter.package_name }}.testing import (
    assert_batch_independent,
    assert_calibrated,
    assert_checkpoint_round_trip,
    assert_eval_deterministic,
    assert_finite,
    assert_gradients_flow,
    assert_logits_shape,
    assert_model_unchanged,
    assert_not_worse,
    assert_returns_logits,
    assert_running_statistics_average_the_batches,
    assert_seed_reproducible,
    assert_state_dicts_differ,
    assert_state_dicts_equal,
    assert_train_stochastic,
    fewest_right,
)
from {{ cookiecutter.package_name }}.training import seed_everything

IN, OUT = 5, 3


class Classifier(nn.Module):
    """A correct two-layer classifier; the subclasses below each break one thing."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Linear(IN, 8)
        self.head = nn.Linear(8, OUT)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class SoftmaxAtTheEnd(Classifier):
    def forward(self, x):
        return torch.softmax(super().forward(x), dim=1)


class SigmoidAtTheEnd(Classifier):
    def forward(self, x):
        return torch.sigmoid(super().forward(x))


class ReluAtTheEnd(Classifier):
    """Logits cut at zero, and small (as a fresh model's are): every output in [0, 1]."""

    def forward(self, x):
        return torch.relu(super().forward(x)) * 0.01


class DetachedBody(Classifier):
    def forward(self, x):
        return self.head(self.features(x).detach())


class UnusedLayer(Classifier):
    def __init__(self) -> None:
        super().__init__()
        self.forgotten = nn.Linear(8, 8)


class DeadBody(Classifier):
    def features(self, x):
        return torch.relu(self.body(x) - 1e6)  # never positive: no gradient reaches the body


class InfiniteGradient(Classifier):
    def forward(self, x):
        return self.head(torch.sqrt(self.features(x) * 0))  # d/dx sqrt(0) is infinite


class DropoutAlwaysOn(Classifier):
    def forward(self, x):
        return self.head(nn.functional.dropout(self.features(x), 0.5, training=True))


class MixesTheBatch(Classifier):
    def forward(self, x):
        return super().forward(x - x.mean(dim=0))


class UnsavedScale(Classifier):
    """Keeps part of its state outside the state dict, so a checkpoint cannot restore it."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("scale", torch.rand(1) + 1, persistent=False)

    def forward(self, x):
        return super().forward(x) * self.scale


@pytest.fixture
def batch():
    features = torch.randn(12, IN)
    return features, features[:, :OUT].argmax(dim=1)  # labels a small network can learn


def test_a_correct_model_passes_every_check(batch, tmp_path):
    features, labels = batch
    model = Classifier()
    assert_logits_shape(model(features), len(features), OUT)
    assert_returns_logits(model, features)
    assert_gradients_flow(model, features, labels)
    assert_eval_deterministic(model, features)
    assert_batch_independent(model, features)
    assert_checkpoint_round_trip(model, Classifier, features, tmp_path / "checkpoint.pt")


@pytest.mark.parametrize(
    ("model_type", "message"),
    [
        (SoftmaxAtTheEnd, r"every output row sums to 1 .* returns probabilities"),
        (SigmoidAtTheEnd, r"all \d+ outputs lie in \[0, 1\] .* a sigmoid at the end of forward, or a ReLU"),
        (ReluAtTheEnd, r"all \d+ outputs lie in \[0, 1\] .* a sigmoid at the end of forward, or a ReLU"),
    ],
)
def test_returns_logits_says_what_it_measured_and_its_possible_causes(model_type, message, batch):
    with pytest.raises(AssertionError, match=message):
        assert_returns_logits(model_type(), batch[0])


@pytest.mark.parametrize(
    ("model_type", "message"),
    [
        (DetachedBody, r"no gradient at all .* \[body.weight, body.bias\]"),
        (UnusedLayer, r"no gradient at all .* \[forgotten.weight, forgotten.bias\]"),
        (DeadBody, r"all-zero gradient .* \[body.weight, body.bias"),
        (InfiniteGradient, r"NaN or infinite gradient for \[body.weight, body.bias\]"),
    ],
    ids=["detach", "unused-layer", "dead-path", "infinite"],
)
def test_gradient_flow_names_the_parameters_left_without_a_usable_gradient(model_type, message, batch):
    with pytest.raises(AssertionError, match=message):
        assert_gradients_flow(model_type(), *batch)


def test_eval_determinism_check_catches_dropout_that_ignores_the_mode(batch):
    with pytest.raises(AssertionError, match="eval mode differ"):
        assert_eval_deterministic(DropoutAlwaysOn(), batch[0])


def test_train_stochasticity_check_catches_a_model_without_active_dropout(batch):
    with pytest.raises(AssertionError, match="identical outputs"):
        assert_train_stochastic(Classifier(), batch[0])


def test_batch_independence_check_catches_normalisation_over_the_batch(batch):
    with pytest.raises(AssertionError, match="non-zero gradient with respect to rows"):
        assert_batch_independent(MixesTheBatch(), batch[0])


def test_batch_independence_check_catches_a_detached_forward(batch):
    class FullyDetached(Classifier):
        def forward(self, x):
            return super().forward(x).detach()

    with pytest.raises(AssertionError, match="not differentiable with respect to the input"):
        assert_batch_independent(FullyDetached(), batch[0])


def test_checkpoint_round_trip_catches_state_kept_outside_the_state_dict(batch, tmp_path):
    with pytest.raises(AssertionError, match="outputs after a round trip"):
        assert_checkpoint_round_trip(UnsavedScale(), UnsavedScale, batch[0], tmp_path / "checkpoint.pt")


def test_seed_check_catches_runs_that_ignore_the_seed(batch):
    with pytest.raises(AssertionError, match="two runs with seed 0"):
        assert_seed_reproducible(lambda seed: Classifier(), batch[0])  # never seeded


def test_seed_check_catches_a_seed_that_changes_nothing(batch):
    def run(seed: int) -> nn.Module:
        seed_everything(1234)  # the argument is ignored
        return Classifier()

    with pytest.raises(AssertionError, match=r"seeds 0 and 1: every one .* expected them to differ"):
        assert_seed_reproducible(run, batch[0])


def test_state_dict_comparison_names_the_entries_that_differ():
    first, second = Classifier().state_dict(), Classifier().state_dict()
    second["head.bias"] = first["head.bias"].clone()
    second["body.weight"] = first["body.weight"].clone()
    second["body.bias"] = first["body.bias"] + 1
    with pytest.raises(AssertionError, match=r"2 of 4 entries differ: \[body.bias .*, head.weight"):
        assert_state_dicts_equal(first, second)
    with pytest.raises(AssertionError, match=r"missing \['head.bias'\]"):
        assert_state_dicts_equal(first, {k: v for k, v in first.items() if k != "head.bias"})
    with pytest.raises(AssertionError, match="expected them to differ"):
        assert_state_dicts_differ(first, dict(first))


def test_model_unchanged_check_catches_a_mode_flip_and_moved_statistics(batch):
    model = nn.Sequential(nn.Linear(IN, 4), nn.BatchNorm1d(4)).eval()

    def switch_to_train_mode():
        with assert_model_unchanged(model, "the call"):
            model.train()

    def forward_in_train_mode():
        with assert_model_unchanged(model, "the call"):
            model.train()(batch[0])
            model.eval()

    with pytest.raises(AssertionError, match=r"changed the mode of .*eval -> train"):
        switch_to_train_mode()
    model.eval()
    with pytest.raises(AssertionError, match=r"1.running_mean"):
        forward_in_train_mode()


def test_finite_and_shape_checks_name_what_is_wrong():
    with pytest.raises(AssertionError, match=r"logits: 1 of 6 values are NaN or infinite \(first at index \(1, 0\)"):
        assert_finite(torch.tensor([[0.0, 1.0, 2.0], [float("nan"), 0.0, 0.0]]), "logits")
    with pytest.raises(AssertionError, match=r"expected logits of shape \(4, 3\) .* got \(4, 2\)"):
        assert_logits_shape(torch.zeros(4, 2), 4, 3)


# -- thresholds from the sample's size ---------------------------------------------------
def sample(rows: int, seed: int, classes: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits, labels) of a perfectly calibrated model: each label drawn from softmax(logits)."""
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(rows, classes, generator=generator, dtype=torch.float64) * 2
    labels = torch.multinomial(torch.softmax(logits, dim=1), 1, generator=generator).squeeze(1)
    return logits, labels


@pytest.mark.parametrize("rows", [24, 36, 113, 500, 2000])
def test_a_calibrated_model_passes_the_calibration_check_at_any_sample_size(rows):
    # A fixed bound of 0.04 fails a perfect model on a few dozen examples: the noise alone is larger.
    for seed in range(5):
        logits, labels = sample(rows, seed)
        assert_calibrated(torch.softmax(logits, dim=1), labels)


@pytest.mark.parametrize("rows", [500, 2000])
def test_an_overconfident_model_fails_the_calibration_check(rows):
    for seed in range(3):
        logits, labels = sample(rows, seed)
        with pytest.raises(AssertionError, match=rf"expected calibration error .* on {rows} examples.*: overconfident"):
            assert_calibrated(torch.softmax(logits * 3, dim=1), labels)  # logits tripled: far too sure
        with pytest.raises(AssertionError, match=r"expected calibration error .*: underconfident"):
            assert_calibrated(torch.softmax(logits / 3, dim=1), labels)  # logits cut to a third: too unsure


@pytest.mark.parametrize(("right", "total"), [(24, 24), (22, 24), (33, 36), (470, 500), (4700, 5000)])
def test_a_model_as_good_as_its_baseline_passes_and_a_worse_one_fails(right, total):
    generator = torch.Generator().manual_seed(0)
    rate = (right + 1) / (total + 2)
    for _ in range(20):  # twenty models as good as the baseline: each within the bound
        as_good = int(torch.binomial(torch.tensor(float(total)), torch.tensor(rate), generator=generator))
        assert_not_worse(as_good, total, right, total)
    worse = round(total * (rate - 0.25))  # a quarter of the examples fewer right
    with pytest.raises(AssertionError, match=rf"measurably below the baseline's .*\({right} of {total}\)"):
        assert_not_worse(worse, total, right, total)
    assert fewest_right(right, total) <= right, "the baseline itself would fail"


@pytest.mark.parametrize(("momentum", "red"), [(0.1, False), (None, False), (0.3, False), (0.99, True), (0.9, True)])
def test_the_running_statistics_check_catches_the_other_frameworks_momentum(momentum, red):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(IN, 8), nn.BatchNorm1d(8, momentum=momentum), nn.ReLU(), nn.Linear(8, OUT))
    inputs = torch.randn(40, IN) * 3 + 5  # far from the zero mean the statistics start at
    before = {name: value.clone() for name, value in model.state_dict().items()}
    if red:
        with pytest.raises(AssertionError, match=rf"follow the last batch.*1 \(momentum {momentum}\)"):
            assert_running_statistics_average_the_batches(model, inputs)
    else:
        assert assert_running_statistics_average_the_batches(model, inputs) == 1
    assert_state_dicts_equal(before, model.state_dict(), "the model's state after the check")
