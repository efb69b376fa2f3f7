"""Every registered model, trained by the project's loop and loss, memorises one small batch, and
has the capacity to memorise random labels that a linear model cannot."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from {{ cookiecutter.package_name }}.testing import assert_memorises_random_labels, assert_overfits_batch

pytestmark = pytest.mark.slow

# Random-label rows: at least this many, and four times as many as one row has values.
CAPACITY_ROWS = 64


def test_training_drives_the_loss_on_one_fixed_batch_near_zero(tiny_model, tiny_batch, learning_rate):
    features, labels = tiny_batch
    optimizer = torch.optim.Adam(tiny_model.parameters(), lr=learning_rate)  # the model's declared rate
    assert_overfits_batch(tiny_model, features, labels, optimizer=optimizer, max_steps=400, target_loss=0.05)


def test_the_overfit_check_fails_for_a_model_that_returns_probabilities(tiny_model, tiny_batch):
    # Cross-entropy on probabilities cannot fall much below 0.55: the check must say so, not pass.
    features, labels = tiny_batch
    with pytest.raises(AssertionError, match=f"could not overfit one fixed batch of {len(labels)} rows"):
        assert_overfits_batch(nn.Sequential(tiny_model, nn.Softmax(dim=1)), features, labels, max_steps=50)


@pytest.fixture(scope="module")
def random_labels(embedded_examples, split, preprocessor) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs, labels): distinct training rows, four times as many as one row of them has values (at
    least ``CAPACITY_ROWS``), each given a label drawn at random, so that no linear model fits them.
    The smallest rows are taken (a batch of texts is as wide as its longest): no more values than
    the check needs."""
    dataset = preprocessor.dataset(embedded_examples.subset(split.train), train=False)
    items = [dataset[i] for i in range(len(dataset))]
    seen: set[tuple[tuple[int, ...], bytes]] = set()
    distinct = []  # the first of each repeated row, smallest first (a stable sort keeps the data's order)
    for index in sorted(range(len(items)), key=lambda i: items[i][0].numel()):
        key = (tuple(items[index][0].shape), items[index][0].numpy().tobytes())
        if key not in seen:
            seen.add(key)
            distinct.append(index)
    rows = next(
        (n for n in range(CAPACITY_ROWS, len(distinct) + 1) if n >= 4 * items[distinct[n - 1]][0].numel()), None
    )
    if rows is None:  # too few for the check to mean anything: a linear model would fit them all
        pytest.skip(
            f"the capacity check needs {CAPACITY_ROWS} or more distinct training rows, four times the values of "
            f"one row; the training split has {len(distinct)}, of up to {items[distinct[-1]][0].numel()} values"
        )
    inputs, _ = preprocessor.collate([items[i] for i in sorted(distinct[:rows])])
    assert len(inputs) >= 4 * inputs[0].numel(), f"{len(inputs)} rows of {inputs[0].numel()} values"
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(len(preprocessor.classes), (rows,), generator=generator)
    return inputs, labels


def test_every_model_memorises_random_labels(model_name, make_model, random_labels, device, learning_rate):
    inputs, labels = (tensor.to(device) for tensor in random_labels)
    model = make_model(model_name, dropout=0.0)
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    assert_memorises_random_labels(model, inputs, labels, optimizer=optimizer)


class Linear(nn.Module):
    """A linear model of the flattened inputs (token ids taken as numbers): the capacity test's control."""

    def __init__(self, inputs: torch.Tensor, num_classes: int) -> None:
        super().__init__()
        self.layer = nn.Linear(inputs[0].numel(), num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x.reshape(len(x), -1).float())


def test_the_capacity_check_fails_for_a_linear_model(random_labels, preprocessor):
    # The rows must defeat a linear model, or the test above would pass a model without its non-linearity.
    inputs, labels = random_labels
    with pytest.raises(AssertionError, match=f"fitted only .* of {len(labels)} random labels"):
        assert_memorises_random_labels(Linear(inputs, len(preprocessor.classes)), inputs, labels)
