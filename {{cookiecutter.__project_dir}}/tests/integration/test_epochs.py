"""The accounting of ``fit``'s epochs: every training row exactly once per epoch, in an order that
changes from epoch to epoch and with the seed, and that is the same for the same seed and epoch.

A loop that trains on part of its split, repeats rows, or shuffles once for the whole run still
trains to a fair accuracy, so nothing else fails. (The same accounting across processes is
checked on the sampler itself, in the unit tier, and by the distributed tier's weights.)
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from torch.utils.data import Dataset

from {{ cookiecutter.package_name }}.training import fit, loop

pytestmark = pytest.mark.slow

EPOCHS = 3


class Recorded(Dataset):
    """A dataset that notes the position of every item the training loader fetches."""

    def __init__(self, dataset: Dataset, fetched: list[int]) -> None:
        self.dataset, self.fetched = dataset, fetched

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, position: int):
        return self.__getitems__([position])[0]

    def __getitems__(self, positions: list[int]):  # how the loader fetches a batch
        self.fetched.extend(int(position) for position in positions)
        fetch = getattr(self.dataset, "__getitems__", None)
        return fetch(positions) if fetch else [self.dataset[position] for position in positions]

    def __getattr__(self, name: str):  # set_epoch and the like reach the real dataset
        return getattr(self.__dict__["dataset"], name)


@pytest.fixture
def epochs_of(monkeypatch, quick_config, tmp_path) -> Callable[..., tuple[list[list[int]], int]]:
    """``epochs_of(seed)``: the training positions fetched in each epoch of a run, and the split's size."""
    real = loop.make_loader

    def run(seed: int) -> tuple[list[list[int]], int]:
        fetched: list[int] = []

        def make_loader(dataset, *args, shuffle, **kwargs):
            return real(Recorded(dataset, fetched) if shuffle else dataset, *args, shuffle=shuffle, **kwargs)

        with monkeypatch.context() as patch:
            patch.setattr(loop, "make_loader", make_loader)
            folder = tmp_path / f"seed{seed}-{len(list(tmp_path.iterdir()))}"
            # Read in this process (num_workers=0), where the recording dataset's list is this test's.
            config = quick_config(seed=seed, epochs=EPOCHS, output_dir=str(folder), num_workers=0)
            result = fit(config, show_progress=False)
        rows = len(result.split.train)
        assert len(fetched) == EPOCHS * rows, (
            f"{len(fetched)} training rows fetched in {EPOCHS} epochs of a {rows}-row training split: "
            f"expected {EPOCHS * rows} (rows dropped or repeated?)"
        )
        return [fetched[i * rows : (i + 1) * rows] for i in range(EPOCHS)], rows

    return run


def test_every_training_row_is_seen_exactly_once_per_epoch(epochs_of):
    epochs, rows = epochs_of(0)
    for number, order in enumerate(epochs):
        repeated = len(order) - len(set(order))
        missing = sorted(set(range(rows)) - set(order))
        assert not repeated, f"epoch {number}: {repeated} of {rows} rows seen twice"
        assert not missing, f"epoch {number}: {len(missing)} of {rows} rows never seen (first {missing[:5]})"


def test_the_order_changes_from_epoch_to_epoch_and_with_the_seed_but_not_between_runs(epochs_of):
    first, _ = epochs_of(0)
    assert len({tuple(order) for order in first}) == EPOCHS, (
        "two epochs saw the training rows in the same order: the shuffle is not drawn per epoch (set_epoch missing?)"
    )
    again, _ = epochs_of(0)
    assert again == first, "two runs with seed 0 saw the training rows in other orders: the order is not seeded"
    other, _ = epochs_of(1)
    assert [order[:20] for order in other] != [order[:20] for order in first], (
        "seeds 0 and 1 saw the training rows in the same order: the seed does not reach the shuffle"
    )
