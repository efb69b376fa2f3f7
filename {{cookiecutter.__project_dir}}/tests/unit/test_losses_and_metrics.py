"""The training loss (cross-entropy on logits) and the metrics: accuracy, confusion matrix, calibration."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from {{ cookiecutter.package_name }}.testing import assert_finite
from {{ cookiecutter.package_name }}.training import (
    accuracy,
    calibration_bins,
    classification_loss,
    confusion_matrix,
    expected_calibration_error,
)
from {{ cookiecutter.package_name }}.training.card import wilson_interval

NUM_CLASSES = 3


def confident_logits(targets: torch.Tensor, margin: float = 30.0) -> torch.Tensor:
    """Logits that put (almost) all probability on the target class."""
    return torch.nn.functional.one_hot(targets, NUM_CLASSES).float() * margin


@st.composite
def logits_and_targets(draw, max_rows: int = 16, bound: float = 50.0):
    rows = draw(st.integers(1, max_rows))
    values = draw(
        st.lists(
            st.floats(-bound, bound, allow_nan=False, width=32),
            min_size=rows * NUM_CLASSES,
            max_size=rows * NUM_CLASSES,
        )
    )
    targets = draw(st.lists(st.integers(0, NUM_CLASSES - 1), min_size=rows, max_size=rows))
    return torch.tensor(values).reshape(rows, NUM_CLASSES), torch.tensor(targets)


@settings(max_examples=40, deadline=None)
@given(logits_and_targets())
def test_loss_is_finite_and_non_negative_for_any_logits(batch):
    logits, targets = batch
    loss = classification_loss()(logits, targets)
    assert_finite(loss, "loss")
    assert loss.item() >= 0, f"negative loss {loss.item()} for logits {logits.tolist()}"


def test_loss_is_a_scalar():
    targets = torch.tensor([0, 1, 2, 1])
    loss = classification_loss()(torch.randn(4, NUM_CLASSES), targets)
    assert loss.ndim == 0, f"expected a scalar loss, got shape {tuple(loss.shape)}"


def test_loss_is_near_zero_on_confident_correct_logits():
    targets = torch.tensor([0, 1, 2, 2, 0])
    loss = classification_loss()(confident_logits(targets), targets).item()
    assert loss < 1e-6, f"loss {loss} on logits that are confidently right; expected ~0 (probabilities fed in?)"


def test_loss_is_large_on_confident_wrong_logits():
    targets = torch.tensor([0, 1, 2])
    wrong = (targets + 1) % NUM_CLASSES
    loss = classification_loss()(confident_logits(wrong), targets).item()
    assert loss > 10, f"loss {loss} on logits that are confidently wrong; expected the margin (30)"


def test_loss_of_uniform_logits_is_log_of_the_number_of_classes():
    targets = torch.tensor([0, 1, 2, 0])
    loss = classification_loss()(torch.zeros(4, NUM_CLASSES), targets).item()
    expected = torch.log(torch.tensor(float(NUM_CLASSES))).item()
    assert loss == pytest.approx(expected, abs=1e-6), f"uniform logits gave {loss}, expected ln(3) = {expected}"


def test_loss_is_finite_for_extreme_logits():
    targets = torch.tensor([0, 1, 2])
    logits = torch.tensor([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4], [1e4, 1e4, -1e4]], requires_grad=True)
    loss = classification_loss()(logits, targets)
    loss.backward()
    assert_finite(loss, "loss on logits of magnitude 1e4 (log of a softmax computed by hand?)")
    assert_finite(logits.grad, "gradient of the loss on logits of magnitude 1e4")


def test_loss_is_differentiable_with_a_nonzero_gradient():
    logits = torch.randn(6, NUM_CLASSES, requires_grad=True)
    targets = torch.tensor([0, 1, 2, 0, 1, 2])
    classification_loss()(logits, targets).backward()
    assert logits.grad is not None, "the loss is not connected to the logits"
    assert_finite(logits.grad, "gradient of the loss")
    assert logits.grad.abs().sum() > 0, "the loss has an all-zero gradient with respect to the logits"


def test_loss_is_the_mean_over_rows_so_the_batch_size_does_not_scale_it():
    logits, targets = torch.randn(5, NUM_CLASSES), torch.tensor([0, 1, 2, 2, 1])
    loss_fn = classification_loss()
    once = loss_fn(logits, targets).item()
    twice = loss_fn(torch.cat([logits, logits]), torch.cat([targets, targets])).item()
    assert twice == pytest.approx(once, rel=1e-6), f"duplicating the batch changed the loss {once} -> {twice}"


def test_loss_takes_logits_so_shifting_a_row_does_not_change_it():
    logits, targets = torch.randn(4, NUM_CLASSES), torch.tensor([0, 1, 2, 1])
    loss_fn = classification_loss()
    shifted = logits + torch.tensor([[5.0], [-3.0], [100.0], [0.5]])
    before, after = loss_fn(logits, targets).item(), loss_fn(shifted, targets).item()
    assert after == pytest.approx(before, rel=1e-5), (
        f"adding a constant to each row changed the loss {before} -> {after}"
    )


def test_label_smoothing_keeps_a_floor_under_the_loss():
    targets = torch.tensor([0, 1, 2])
    smooth = classification_loss(label_smoothing=0.1)(confident_logits(targets), targets).item()
    assert smooth > 0.1, f"label smoothing 0.1 gave loss {smooth} on confident logits; expected a floor above 0.1"


def test_accuracy_matches_a_hand_computed_value():
    logits = torch.tensor(
        [
            [2.0, 1.0, 0.0],  # predicts 0, target 0: right
            [0.0, 3.0, 1.0],  # predicts 1, target 1: right
            [0.0, 1.0, 5.0],  # predicts 2, target 1: wrong
            [4.0, 0.0, 1.0],  # predicts 0, target 2: wrong
            [0.1, 0.2, 0.3],  # predicts 2, target 2: right
        ]
    )
    targets = torch.tensor([0, 1, 1, 2, 2])
    assert accuracy(logits, targets) == pytest.approx(3 / 5), f"accuracy {accuracy(logits, targets)}, by hand 3/5"


def test_accuracy_is_one_when_every_row_is_right_and_zero_when_none_is():
    targets = torch.tensor([2, 0, 1, 1])
    assert accuracy(confident_logits(targets), targets) == 1.0
    assert accuracy(confident_logits((targets + 1) % NUM_CLASSES), targets) == 0.0


def test_accuracy_of_a_single_row():
    assert accuracy(torch.tensor([[0.0, 1.0, 0.5]]), torch.tensor([1])) == 1.0
    assert accuracy(torch.tensor([[0.0, 1.0, 0.5]]), torch.tensor([2])) == 0.0


@pytest.mark.parametrize(
    ("logits", "targets", "message"),
    [
        (torch.zeros(3, NUM_CLASSES), torch.zeros(2, dtype=torch.long), "expected logits"),
        (torch.zeros(3), torch.zeros(3, dtype=torch.long), "expected logits"),
        (torch.zeros(0, NUM_CLASSES), torch.zeros(0, dtype=torch.long), "empty batch"),
    ],
    ids=["length-mismatch", "one-dimensional-logits", "empty"],
)
def test_accuracy_refuses_malformed_input(logits, targets, message):
    with pytest.raises(ValueError, match=message):
        accuracy(logits, targets)


def test_calibration_error_matches_a_hand_computed_value():
    probabilities = torch.tensor([[0.95, 0.03, 0.02], [0.90, 0.05, 0.05], [0.10, 0.60, 0.30], [0.30, 0.30, 0.40]])
    targets = torch.tensor([0, 1, 1, 0])
    # Each row falls in a bin of its own: |accuracy - confidence| per bin, each weighing 1/4.
    expected = (abs(1 - 0.95) + abs(0 - 0.9) + abs(1 - 0.6) + abs(0 - 0.4)) / 4
    error = expected_calibration_error(probabilities, targets, bins=10)
    assert error == pytest.approx(expected, abs=1e-6), f"calibration error {error}, by hand {expected}"


def test_calibration_error_weighs_each_bin_by_its_share_of_the_rows():
    probabilities = torch.tensor([[0.75, 0.25], [0.75, 0.25], [0.95, 0.05]])
    targets = torch.tensor([0, 1, 0])
    # (0.7, 0.8]: two rows, accuracy 1/2, confidence 0.75; (0.9, 1]: one row, accuracy 1, confidence 0.95.
    expected = 2 / 3 * abs(0.5 - 0.75) + 1 / 3 * abs(1 - 0.95)
    error = expected_calibration_error(probabilities, targets, bins=10)
    assert error == pytest.approx(expected, abs=1e-6), f"calibration error {error}, by hand {expected} (bins weighed?)"


def test_a_confidence_on_a_bin_edge_belongs_to_the_lower_bin():
    # 0.5 is in (0.4, 0.5], 0.55 in (0.5, 0.6]: two bins of one row each, not one bin of two.
    probabilities = torch.tensor([[0.5, 0.25, 0.25], [0.55, 0.25, 0.20]])
    error = expected_calibration_error(probabilities, torch.tensor([0, 1]), bins=10)
    expected = (abs(1 - 0.5) + abs(0 - 0.55)) / 2
    assert error == pytest.approx(expected, abs=1e-6), f"calibration error {error}, by hand {expected}"


def test_calibration_error_is_zero_when_confidence_equals_accuracy_and_large_when_overconfident():
    targets = torch.tensor([0, 1, 2, 1])
    assert expected_calibration_error(torch.nn.functional.one_hot(targets, NUM_CLASSES).float(), targets) == 0.0
    wrong = torch.nn.functional.one_hot((targets + 1) % NUM_CLASSES, NUM_CLASSES).float()
    assert expected_calibration_error(wrong, targets) == pytest.approx(1.0), "certain and always wrong must give 1"


def test_calibration_error_refuses_malformed_input():
    with pytest.raises(ValueError, match="expected probabilities"):
        expected_calibration_error(torch.zeros(3, NUM_CLASSES), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="empty"):
        expected_calibration_error(torch.zeros(0, NUM_CLASSES), torch.zeros(0, dtype=torch.long))


def test_confusion_matrix_has_a_row_per_true_class_and_a_column_per_prediction():
    targets = torch.tensor([0, 0, 0, 1, 1, 2])
    predicted = torch.tensor([0, 1, 1, 1, 2, 2])
    matrix = confusion_matrix(predicted, targets, NUM_CLASSES)
    expected = [[1, 2, 0], [0, 1, 1], [0, 0, 1]]
    assert matrix.tolist() == expected, f"confusion matrix {matrix.tolist()}, by hand {expected}"


def test_confusion_matrix_refuses_classes_it_has_no_row_for():
    with pytest.raises(ValueError, match="targets holds classes outside"):
        confusion_matrix(torch.tensor([0, 1]), torch.tensor([0, NUM_CLASSES]), NUM_CLASSES)
    with pytest.raises(ValueError, match="expected predicted"):
        confusion_matrix(torch.tensor([0, 1]), torch.tensor([0]), NUM_CLASSES)


def test_calibration_bins_hold_each_row_once_with_its_bin_s_confidence_and_accuracy():
    probabilities = torch.tensor([[0.75, 0.25], [0.75, 0.25], [0.95, 0.05]])
    bins = calibration_bins(probabilities, torch.tensor([0, 1, 0]), bins=10)
    assert [b.rows for b in bins] == [0, 0, 0, 0, 0, 0, 0, 2, 0, 1], [b.rows for b in bins]
    assert (bins[7].lower, bins[7].upper) == pytest.approx((0.7, 0.8))
    assert (bins[7].confidence, bins[7].accuracy) == pytest.approx((0.75, 0.5))
    assert (bins[9].confidence, bins[9].accuracy) == pytest.approx((0.95, 1.0))
    assert (bins[0].confidence, bins[0].accuracy) == (None, None), "an empty bin has no confidence or accuracy"


@pytest.mark.parametrize(
    ("right", "total", "low", "high"),
    [(5, 10, 0.2366, 0.7634), (0, 10, 0.0, 0.2775), (10, 10, 0.7225, 1.0), (95, 100, 0.8883, 0.9785)],
)
def test_the_accuracy_interval_of_the_model_card_is_wilson_s(right, total, low, high):
    # Published values of the 95% Wilson score interval; unlike p +- 1.96 sd it stays inside [0, 1]
    # and is not empty when every example is right.
    found = wilson_interval(right, total)
    assert found == pytest.approx((low, high), abs=1e-4), f"{right} of {total}: {found}, expected ({low}, {high})"
