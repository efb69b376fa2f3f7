"""Assertions for the silent bugs of ML code: the one place the test suite keeps them.

Each helper checks one property of a model, a training step or a checkpoint and raises
``AssertionError`` with a message that names what broke and the value that broke it
(the parameter names without a gradient, the rows that leaked, the loss that would not
go down). The contract tests call them for every registered model, so a model you
register gets the whole battery; call them from your own tests as well.

Helpers put a model in the mode they need (train or eval) and give it back in the
mode they found it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .checkpoint import Checkpoint, load_checkpoint, load_model_state, save_checkpoint
from .training.loop import train_one_epoch
from .training.losses import classification_loss
from .training.seed import capture_rng_state

# The battery's tiny models: small enough that a forward and backward pass takes a millisecond.
TINY_MODEL_OPTIONS = {"hidden_size": 16, "depth": 2}

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

__all__ = [
    "assert_batch_independent",
    "assert_calibrated",
    "assert_checkpoint_round_trip",
    "assert_eval_deterministic",
    "assert_finite",
    "assert_gradients_flow",
    "assert_logits_shape",
    "assert_memorises_random_labels",
    "assert_model_unchanged",
    "assert_not_worse",
    "assert_overfits_batch",
    "assert_parameters_changed",
    "assert_returns_logits",
    "assert_running_statistics_average_the_batches",
    "assert_same_outputs",
    "assert_seed_reproducible",
    "assert_state_dicts_differ",
    "assert_state_dicts_equal",
    "assert_step_updates_every_parameter",
    "assert_train_stochastic",
    "calibration_threshold",
    "count_reads",
    "fewest_right",
    "snapshot_parameters",
    "trainable_parameters",
]


# -- small tools -----------------------------------------------------------------------
def trainable_parameters(model: nn.Module) -> dict[str, nn.Parameter]:
    """The parameters an optimiser should move, by name."""
    return {name: p for name, p in model.named_parameters() if p.requires_grad}


def snapshot_parameters(model: nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of every trainable parameter, to compare against later."""
    return {name: p.detach().clone() for name, p in trainable_parameters(model).items()}


@contextmanager
def _mode(model: nn.Module, training: bool) -> Iterator[nn.Module]:
    """Put ``model`` in train or eval mode, then give every submodule its old mode back."""
    previous = [(module, module.training) for module in model.modules()]
    model.train(training)
    try:
        yield model
    finally:
        for module, was_training in previous:
            module.training = was_training


def _forward(model: nn.Module, inputs: torch.Tensor, *, training: bool) -> torch.Tensor:
    with _mode(model, training), torch.no_grad():
        return model(inputs)


def _listed(names: list[str], limit: int = 8) -> str:
    shown = ", ".join(names[:limit])
    return f"[{shown}{', ...' if len(names) > limit else ''}] ({len(names)})"


def _max_difference(a: torch.Tensor, b: torch.Tensor) -> float:
    if a.shape != b.shape:
        return float("nan")
    return (a.detach().double().cpu() - b.detach().double().cpu()).abs().max().item() if a.numel() else 0.0


# -- outputs ---------------------------------------------------------------------------
def assert_finite(tensor: torch.Tensor, what: str = "tensor") -> None:
    """No NaN and no infinity anywhere in ``tensor``."""
    bad = ~torch.isfinite(tensor.detach())
    if bad.any():
        first = tuple(bad.nonzero()[0].tolist())
        raise AssertionError(
            f"{what}: {int(bad.sum())} of {tensor.numel()} values are NaN or infinite "
            f"(first at index {first}: {tensor.detach()[first].item()})"
        )


def assert_logits_shape(logits: torch.Tensor, batch_size: int, num_classes: int) -> None:
    """One row of ``num_classes`` scores per input row."""
    expected = (batch_size, num_classes)
    if tuple(logits.shape) != expected:
        raise AssertionError(f"expected logits of shape {expected} (rows, classes), got {tuple(logits.shape)}")


def assert_returns_logits(model: nn.Module, inputs: torch.Tensor, *, atol: float = 1e-4) -> None:
    """The model returns raw scores, not probabilities (the loss applies log-softmax itself).

    A softmax or sigmoid at the end of ``forward`` makes every output lie in [0, 1] (and,
    for softmax, every row sum to one); cross-entropy on top of it trains badly and can
    never reach a loss near zero.
    """
    outputs = _forward(model, inputs, training=False).double()
    row_sums = outputs.sum(dim=1)
    if torch.allclose(row_sums, torch.ones_like(row_sums), atol=atol):
        raise AssertionError(
            f"every output row sums to 1 (within {atol}; sums {row_sums[:4].tolist()}): the model returns "
            "probabilities (a softmax in forward?) but the loss expects logits"
        )
    if bool(((outputs >= 0) & (outputs <= 1)).all()):
        raise AssertionError(
            f"all {outputs.numel()} outputs lie in [0, 1] (min {outputs.min().item():.4g}, "
            f"max {outputs.max().item():.4g}), where logits take any sign: a sigmoid at the end of "
            "forward, or a ReLU or clamp that cuts off negative logits (and an upper bound)? The loss "
            "expects logits: unbounded scores, one per class"
        )


# -- gradients and optimiser steps -----------------------------------------------------
def assert_gradients_flow(
    model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, loss_fn: LossFn | None = None
) -> dict[str, torch.Tensor]:
    """One backward pass in train mode gives every trainable parameter a finite, non-zero gradient.

    Catches a misplaced ``.detach()``, a layer built but never called, a frozen path
    (a ReLU that is always off), parameters kept outside the graph. Returns the gradients.
    """
    loss_fn = loss_fn or classification_loss()
    parameters = trainable_parameters(model)
    if not parameters:
        raise AssertionError(f"{type(model).__name__} has no trainable parameters")
    model.zero_grad(set_to_none=True)
    with _mode(model, True):
        loss = loss_fn(model(inputs), targets)
    assert_finite(loss, "loss before backward")
    loss.backward()
    missing = [name for name, p in parameters.items() if p.grad is None]
    not_finite = [name for name, p in parameters.items() if p.grad is not None and not torch.isfinite(p.grad).all()]
    zero = [name for name, p in parameters.items() if p.grad is not None and not p.grad.any()]
    problems = []
    if missing:
        problems.append(f"no gradient at all (outside the graph: a detach, an unused layer?) for {_listed(missing)}")
    if not_finite:
        problems.append(f"NaN or infinite gradient for {_listed(not_finite)}")
    if zero:
        problems.append(f"an all-zero gradient (a dead or blocked path?) for {_listed(zero)}")
    if problems:
        raise AssertionError(
            f"gradients do not reach every parameter of {type(model).__name__}: " + "; ".join(problems)
        )
    return {name: p.grad.detach().clone() for name, p in parameters.items() if p.grad is not None}


def assert_parameters_changed(before: Mapping[str, torch.Tensor], model: nn.Module, what: str = "training") -> None:
    """Every trainable parameter differs from its ``before`` snapshot."""
    now = trainable_parameters(model)
    unchanged = [name for name, old in before.items() if name in now and torch.equal(old, now[name].detach())]
    if unchanged:
        raise AssertionError(
            f"{len(unchanged)} of {len(now)} trainable parameters did not change during {what} "
            f"(left out of the optimiser? a zero learning rate? no gradient?): {_listed(unchanged)}"
        )


def assert_step_updates_every_parameter(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    loss_fn: LossFn | None = None,
) -> None:
    """One optimiser step of the project's training loop changes every trainable parameter."""
    before = snapshot_parameters(model)
    with _mode(model, True):
        train_one_epoch(model, [(inputs, targets)], loss_fn or classification_loss(), optimizer, inputs.device)
    assert_parameters_changed(before, model, what="one optimiser step")


def _train_on_batch_until(
    model: nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    measure: Callable[[], float],
    done: Callable[[float], bool],
    *,
    optimizer: torch.optim.Optimizer | None,
    loss_fn: LossFn,
    max_steps: int,
    check_every: int,
) -> tuple[int, float]:
    """Step the project's training loop on one fixed batch until ``done(measure())`` or ``max_steps``;
    (steps taken, last measure). ``measure`` runs in eval mode; Adam at 1e-2 unless told otherwise."""
    optimizer = optimizer or torch.optim.Adam(model.parameters(), lr=1e-2)
    steps, value = 0, measure()
    with _mode(model, True):
        while steps < max_steps and not done(value):
            train_one_epoch(model, [(inputs, targets)] * check_every, loss_fn, optimizer, inputs.device)
            steps += check_every
            value = measure()
    return steps, value


def assert_overfits_batch(
    model: nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    *,
    optimizer: torch.optim.Optimizer | None = None,
    loss_fn: LossFn | None = None,
    max_steps: int = 400,
    target_loss: float = 0.05,
    check_every: int = 25,
) -> int:
    """The training loop drives the loss on one fixed batch near zero within ``max_steps``.

    A model and loss that are wired correctly memorise a handful of rows quickly; a model
    that cannot is fed probabilities instead of logits, follows the gradient uphill, keeps
    stale gradients or has too little capacity. The loss is measured in eval mode. Returns
    the number of steps it took.
    """
    loss_fn = loss_fn or classification_loss()

    def eval_loss() -> float:
        return loss_fn(_forward(model, inputs, training=False), targets).item()

    initial = eval_loss()
    steps, final = _train_on_batch_until(
        model,
        inputs,
        targets,
        eval_loss,
        lambda loss: loss <= target_loss,
        optimizer=optimizer,
        loss_fn=loss_fn,
        max_steps=max_steps,
        check_every=check_every,
    )
    if final > target_loss:
        raise AssertionError(
            f"could not overfit one fixed batch of {len(targets)} rows: loss {initial:.4f} -> {final:.4f} after "
            f"{steps} steps, wanted <= {target_loss} (probabilities fed to the loss? a gradient sign error? "
            "gradients never zeroed?)"
        )
    return steps


def assert_memorises_random_labels(
    model: nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    *,
    optimizer: torch.optim.Optimizer | None = None,
    loss_fn: LossFn | None = None,
    max_steps: int = 600,
    min_accuracy: float = 0.95,
    check_every: int = 50,
) -> int:
    """Capacity: the training loop fits arbitrary labels ``targets`` on the rows ``inputs``.

    Give it distinct rows, more of them than one row has values, with labels drawn at random:
    a linear model cannot fit those, so a model that does has the non-linear capacity its
    layers promise. A model with less (an activation replaced by identity, a block skipped in
    ``forward``, a layer that is built but never called) still reaches a decent accuracy on an
    easy dataset, so only a test like this one sees it. Accuracy is measured in eval mode;
    returns the number of steps it took.
    """

    def eval_accuracy() -> float:
        return (_forward(model, inputs, training=False).argmax(dim=1) == targets).double().mean().item()

    steps, accuracy = _train_on_batch_until(
        model,
        inputs,
        targets,
        eval_accuracy,
        lambda accuracy: accuracy >= min_accuracy,
        optimizer=optimizer,
        loss_fn=loss_fn or classification_loss(),
        max_steps=max_steps,
        check_every=check_every,
    )
    if accuracy < min_accuracy:
        raise AssertionError(
            f"{type(model).__name__} fitted only {100 * accuracy:.0f} percent of {len(targets)} random labels after "
            f"{steps} steps, wanted {100 * min_accuracy:.0f}: it has no more capacity than a linear model on these "
            "rows (an activation replaced by identity? a block or layer skipped in forward?)"
        )
    return steps


# -- modes and determinism -------------------------------------------------------------
def assert_eval_deterministic(model: nn.Module, inputs: torch.Tensor) -> None:
    """Two forward passes in eval mode give bit-identical outputs (dropout is off)."""
    first = _forward(model, inputs, training=False)
    second = _forward(model, inputs, training=False)
    if not torch.equal(first, second):
        raise AssertionError(
            "two forward passes in eval mode differ (max abs difference "
            f"{_max_difference(first, second):.3g}): dropout or another random layer is active in eval mode"
        )


def assert_train_stochastic(model: nn.Module, inputs: torch.Tensor) -> None:
    """Two forward passes in train mode differ (dropout is on). Only for models with dropout."""
    first = _forward(model, inputs, training=True)
    second = _forward(model, inputs, training=True)
    if torch.equal(first, second):
        raise AssertionError(
            "two forward passes in train mode gave identical outputs: dropout is not active in train mode "
            "(built with dropout=0, or a layer that ignores model.train()?)"
        )


def assert_batch_independent(model: nn.Module, inputs: torch.Tensor, index: int = 0, *, atol: float = 1e-6) -> None:
    """In eval mode the output of one row depends on that row only.

    Checked twice: the gradient of row ``index``'s output with respect to every other row
    is exactly zero (for floating-point inputs; token ids carry no gradient), and changing
    row ``index`` leaves the other rows' outputs as they were. Catches normalisation or
    softmax over the batch dimension, and batch-norm that uses batch statistics at inference.
    """
    if len(inputs) < 2:
        raise AssertionError("batch independence needs a batch of at least two rows")
    others = [i for i in range(len(inputs)) if i != index]
    if inputs.is_floating_point():
        with _mode(model, False):
            probe = inputs.detach().clone().requires_grad_(True)
            output = model(probe)[index].sum()
            if output.requires_grad:
                output.backward()
            model.zero_grad(set_to_none=True)
        if probe.grad is None:
            raise AssertionError(
                "the output is not differentiable with respect to the input (a detach or no_grad in forward?)"
            )
        leaked = [i for i in others if probe.grad[i].any()]
        if leaked:
            raise AssertionError(
                f"the output of row {index} has a non-zero gradient with respect to rows {leaked[:10]}: rows of a "
                "batch mix in eval mode (normalising or softmax over dim 0? batch-norm using batch statistics?)"
            )
    changed_inputs = inputs.detach().clone()
    if inputs.is_floating_point():
        changed_inputs[index] = changed_inputs[index] * -3.0 + 1.0
    else:  # discrete inputs (token ids): take another row's values, which are valid inputs too
        donors = [i for i in others if not torch.equal(inputs[i], inputs[index])]
        if not donors:
            raise AssertionError(f"every row equals row {index}: batch independence needs rows that differ")
        changed_inputs[index] = inputs[donors[0]]
    before = _forward(model, inputs, training=False)
    after = _forward(model, changed_inputs, training=False)
    moved = [i for i in others if not torch.allclose(before[i], after[i], rtol=0, atol=atol)]
    if moved:
        raise AssertionError(
            f"changing row {index} changed the outputs of rows {moved[:10]} in eval mode "
            f"(max abs difference {_max_difference(before[others], after[others]):.3g})"
        )


def assert_running_statistics_average_the_batches(
    model: nn.Module, inputs: torch.Tensor, *, batches: int = 60, batch_size: int = 8, seed: int = 0
) -> int:
    """Each batch norm's running mean, after ``batches`` random batches of ``inputs`` in train mode,
    sits nearer the mean over all those batches than the last batch's own mean; returns how many
    batch norms were checked (0: the model has none).

    PyTorch's ``momentum`` is the weight of the new batch (0.1 by default); written in the other
    frameworks' convention (0.99, the weight of the old value) the running statistics follow the
    last batch alone, and a model evaluates on one batch's noise. Nothing else shows it: the
    model trains as well, and its eval outputs merely wobble. The weights are left as they were.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    if not norms:
        return 0
    seen: dict[nn.Module, list[torch.Tensor]] = {norm: [] for norm in norms}

    def record(module: nn.Module, args: tuple[Any, ...]) -> None:
        (x,) = args[:1]
        dims = [d for d in range(x.dim()) if d != 1]
        seen[module].append(x.detach().double().mean(dim=dims))

    state = {name: value.clone() for name, value in model.state_dict().items()}
    handles = [norm.register_forward_pre_hook(record) for norm in norms]
    generator = torch.Generator().manual_seed(seed)
    try:
        for norm in norms:
            norm.reset_running_stats()
        with _mode(model, True), torch.no_grad():
            for _ in range(batches):
                rows = torch.randint(len(inputs), (batch_size,), generator=generator)
                model(inputs[rows.to(inputs.device)])
        problems = []
        for name, norm in ((n, m) for n, m in model.named_modules() if m in seen):
            means = torch.stack(seen[norm])
            running = norm.running_mean.double()
            to_all, to_last = (running - means.mean(dim=0)).norm(), (running - means[-1]).norm()
            if to_all >= to_last:
                problems.append(
                    f"{name} (momentum {norm.momentum}): its running mean is {to_last:.3g} from the last batch's "
                    f"mean and {to_all:.3g} from the mean over all {batches}"
                )
    finally:
        for handle in handles:
            handle.remove()
        model.load_state_dict(state)
    if problems:
        raise AssertionError(
            "running statistics follow the last batch, not the data: " + "; ".join(problems) + ". PyTorch's "
            "momentum is the new batch's weight (0.1 by default): 0.99 is another framework's convention"
        )
    return len(norms)


# -- state comparisons -----------------------------------------------------------------
def _as_cpu(value: Any) -> Any:
    return value.detach().cpu() if isinstance(value, torch.Tensor) else value


def assert_state_dicts_equal(expected: Mapping[str, Any], actual: Mapping[str, Any], what: str = "state dicts") -> None:
    """Same keys and bit-identical tensors; the message names every key that differs."""
    missing = sorted(set(expected) - set(actual))
    unexpected = sorted(set(actual) - set(expected))
    if missing or unexpected:
        raise AssertionError(f"{what}: keys differ; missing {missing}, unexpected {unexpected}")
    differing = []
    for key in expected:
        a, b = _as_cpu(expected[key]), _as_cpu(actual[key])
        same = torch.equal(a, b) if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) else a == b
        if not same:
            if isinstance(a, torch.Tensor):
                differing.append(f"{key} (max abs difference {_max_difference(a, b):.3g})")
            else:
                differing.append(f"{key} ({a!r} != {b!r})")
    if differing:
        raise AssertionError(f"{what}: {len(differing)} of {len(expected)} entries differ: {_listed(differing)}")


def assert_state_dicts_differ(first: Mapping[str, Any], second: Mapping[str, Any], what: str = "state dicts") -> None:
    """At least one entry differs (e.g. two different seeds give different weights)."""
    try:
        assert_state_dicts_equal(first, second, what)
    except AssertionError:
        return
    raise AssertionError(f"{what}: every one of {len(first)} entries is identical, expected them to differ")


def assert_same_outputs(first: nn.Module, second: nn.Module, inputs: torch.Tensor, what: str = "outputs") -> None:
    """The two models give bit-identical eval-mode outputs on ``inputs``."""
    a = _forward(first, inputs, training=False)
    b = _forward(second, inputs, training=False)
    if not torch.equal(a, b):
        raise AssertionError(f"{what} differ: max abs difference {_max_difference(a, b):.3g}")


@contextmanager
def assert_model_unchanged(model: nn.Module, what: str = "the call") -> Iterator[None]:
    """Inside the ``with`` block, the model's mode, weights and buffers must not change.

    For code that only reads a model (validation, prediction): batch-norm running
    statistics are buffers, so a forward pass in train mode is caught too.
    """
    modes = {name: module.training for name, module in model.named_modules()}
    state = {key: value.detach().clone() for key, value in model.state_dict().items()}
    yield
    flipped = []
    for name, module in model.named_modules():
        if module.training != modes[name]:
            change = "train -> eval" if modes[name] else "eval -> train"
            flipped.append(f"{name or type(model).__name__} ({change})")
    if flipped:
        raise AssertionError(f"{what} changed the mode of {_listed(flipped)}")
    assert_state_dicts_equal(state, model.state_dict(), f"weights and buffers after {what}")


# -- reproducibility and checkpoints ---------------------------------------------------
def assert_seed_reproducible(
    run: Callable[[int], nn.Module], inputs: torch.Tensor, *, seed: int = 0, other_seed: int = 1
) -> None:
    """``run(seed)`` (build, then train a few steps) is a pure function of the seed.

    Two runs with ``seed`` end with identical weights and identical outputs; a run with
    ``other_seed`` ends with different weights (the seed is really used).
    """
    first, second = run(seed), run(seed)
    assert_state_dicts_equal(first.state_dict(), second.state_dict(), f"weights of two runs with seed {seed}")
    assert_same_outputs(first, second, inputs, f"outputs of two runs with seed {seed}")
    other = run(other_seed)
    assert_state_dicts_differ(
        first.state_dict(), other.state_dict(), f"weights of runs with seeds {seed} and {other_seed}"
    )


def assert_checkpoint_round_trip(
    model: nn.Module, rebuild: Callable[[], nn.Module], inputs: torch.Tensor, path: str | Path
) -> nn.Module:
    """Save ``model`` with the project's checkpoint code, load it into ``rebuild()``, compare.

    The restored model must hold bit-identical weights and buffers and give bit-identical
    eval-mode outputs. Returns the restored model.
    """
    checkpoint = Checkpoint(
        model_name=type(model).__name__,
        model_options={},
        model_state=model.state_dict(),
        preprocessor={},
        config={},
        epoch=0,
        rng_state=capture_rng_state(),
    )
    save_checkpoint(checkpoint, path)
    restored = rebuild().to(inputs.device)
    load_model_state(restored, load_checkpoint(path).model_state)
    assert_state_dicts_equal(model.state_dict(), restored.state_dict(), f"weights after a round trip through {path}")
    assert_same_outputs(model, restored, inputs, f"outputs after a round trip through {path}")
    return restored


# -- quality on a sample: thresholds from the sample's size ---------------------------------
def fewest_right(right: int, total: int, *, chance: float = 1e-3) -> int:
    """The fewest of ``total`` examples that a model as good as one that got ``right`` of them
    gets right, but for a ``chance`` of the time: the ``chance`` quantile of Binomial(total, rate),
    the rate estimated as (right + 1) / (total + 2) (all right on a few examples is no proof of
    a perfect model). Fewer right than this is a measurably worse model, whatever the sample size."""
    if not 0 <= right <= total or total < 1:
        raise ValueError(f"expected 0 <= right <= total and total >= 1, got {right} of {total}")
    rate, cumulative = (right + 1) / (total + 2), 0.0
    for k in range(total + 1):
        log_comb = math.lgamma(total + 1) - math.lgamma(k + 1) - math.lgamma(total - k + 1)
        cumulative += math.exp(log_comb + k * math.log(rate) + (total - k) * math.log1p(-rate))
        if cumulative > chance:
            return k
    return total


def assert_not_worse(right: int, total: int, baseline_right: int, baseline_total: int, what: str = "accuracy") -> None:
    """``right`` of ``total`` is no measurably worse than ``baseline_right`` of ``baseline_total``
    (the baseline's rate, at this sample's size, ``fewest_right``)."""
    floor = fewest_right(round(baseline_right / baseline_total * total), total)  # at this sample's size
    if right < floor:
        raise AssertionError(
            f"{what} {right / total:.3f} ({right} of {total} right) is measurably below the baseline's "
            f"{baseline_right / baseline_total:.3f} ({baseline_right} of {baseline_total}): a model as good "
            f"gets at least {floor} of {total} right but for one time in a thousand"
        )


def calibration_threshold(
    probabilities: torch.Tensor, bins: int = 10, *, tolerance: float = 0.04, draws: int = 2000, seed: int = 0
) -> float:
    """The expected calibration error that ``probabilities`` may show on their own sample size:
    ``tolerance``, or more where the sample is too small to tell that much apart from noise.

    A perfectly calibrated model with these very confidences still shows an error on a finite
    sample. Labels are drawn from the model's own probabilities ``draws`` times (seeded), and the
    99.9th percentile of the errors they give is the noise; the threshold is the larger of it
    and ``tolerance``, the miscalibration accepted on a sample large enough to measure it.
    Only whether a drawn label is the predicted one counts, so each draw is a coin that comes
    up right with the row's confidence."""
    probabilities = probabilities.detach().cpu().double()
    generator = torch.Generator().manual_seed(seed)
    confidence = probabilities.max(dim=1).values
    uniform = torch.rand(len(confidence), draws, generator=generator, dtype=torch.float64)  # (N, draws)
    correct = (uniform < confidence[:, None]).double()
    index = (torch.ceil(confidence * bins) - 1).clamp(0, bins - 1).long()
    members = torch.nn.functional.one_hot(index, bins).double()  # (N, bins)
    errors = (members.T @ (correct - confidence[:, None])).abs().sum(dim=0) / len(probabilities)
    return max(tolerance, torch.quantile(errors, 0.999).item())


def assert_calibrated(
    probabilities: torch.Tensor, targets: torch.Tensor, bins: int = 10, *, tolerance: float = 0.04
) -> float:
    """The expected calibration error of ``probabilities`` against ``targets`` is within the
    threshold of their sample (``calibration_threshold``); returns it."""
    from .training.metrics import expected_calibration_error

    error = expected_calibration_error(probabilities, targets, bins)
    threshold = calibration_threshold(probabilities, bins, tolerance=tolerance)
    if error > threshold:
        confidence, predicted = probabilities.max(dim=1)
        mean_confidence, accuracy = confidence.mean().item(), (predicted == targets).float().mean().item()
        way = (
            "overconfident (a model trained past its best, or scaled-up logits: more regularisation, fewer "
            "epochs or temperature scaling)"
            if mean_confidence > accuracy
            else "underconfident (softened or double-softmaxed probabilities, label smoothing?)"
        )
        raise AssertionError(
            f"expected calibration error {error:.4f} > {threshold:.4f} on {len(targets)} examples ({bins} bins; "
            f"the larger of {tolerance} and what a perfectly calibrated model with these confidences shows but "
            f"for one time in a thousand): the model's confidence does not match how often it is right; mean "
            f"confidence {mean_confidence:.3f}, accuracy {accuracy:.3f}: {way}"
        )
    return error


# -- reading data ----------------------------------------------------------------------
@contextmanager
def count_reads() -> Iterator[dict[str, int]]:
    """Count the examples read while the block runs (every read of a subset of examples goes
    through ``task.Rows.read``), by phase of ``fit``: ``fit`` (fitting the preprocessing),
    ``prepare`` (building the datasets, where a task transforms its examples once) and
    ``epochs`` (the rest: training and evaluation batches). Reads in DataLoader worker processes
    happen in those processes: count with ``num_workers=0``."""
    from .data import Preprocessor
    from .task import Rows
    from .training import loop

    counts = {"fit": 0, "prepare": 0, "epochs": 0}
    phase = ["epochs"]
    read, fit_preprocessor, dataset = Rows.read, loop._fit_preprocessor, Preprocessor.dataset

    def during(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            before, phase[0] = phase[0], name
            try:
                return function(*args, **kwargs)
            finally:
                phase[0] = before

        return wrapped

    def counted(self: Rows, rows: Any) -> Any:
        counts[phase[0]] += len(rows)
        return read(self, rows)

    Rows.read = counted  # type: ignore[method-assign]
    loop._fit_preprocessor = during("fit", fit_preprocessor)
    Preprocessor.dataset = during("prepare", dataset)  # type: ignore[method-assign]
    try:
        yield counts
    finally:
        Rows.read, loop._fit_preprocessor, Preprocessor.dataset = read, fit_preprocessor, dataset  # type: ignore[method-assign]
