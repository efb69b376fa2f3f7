"""Serving: raw inputs in, the training preprocessing applied, probabilities out, bad input refused.

Written against the task's seam (``task.py``), so it holds for any task and any registered model.
The task's own request checks (columns, categories, image files, texts) are in its own test files.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from {{ cookiecutter.package_name }}.checkpoint import Checkpoint, CheckpointError
from {{ cookiecutter.package_name }}.inference import Predictor
from {{ cookiecutter.package_name }}.models import available_models
from {{ cookiecutter.package_name }}.training import capture_rng_state


def items_of(inputs) -> list:
    """The raw items of a pandas object of inputs: records of a table, else the values themselves."""
    if hasattr(inputs, "columns"):
        return inputs.to_dict(orient="records")
    return list(inputs)


@pytest.fixture
def held_out(embedded_examples, split):
    """Examples the model never trained on."""
    return embedded_examples.subset(split.test)


def test_predictor_puts_the_model_in_eval_mode(predictor):
    assert not predictor.model.training, "the predictor serves a model in train mode (dropout on)"


def test_inference_inputs_equal_training_inputs_for_the_same_examples(
    any_predictor, preprocessor, embedded_examples, split
):
    # A request must be transformed with the state fitted on the training split, exactly as the
    # evaluation data is during training: refitting on the request or skipping a step is skew.
    for rows in (split.train[:5], split.test[:1], split.val):
        examples = embedded_examples.subset(rows)
        dataset = preprocessor.dataset(examples, train=False)
        at_training, _ = preprocessor.collate([dataset[i] for i in range(len(dataset))])
        at_inference = any_predictor.features(examples.read())
        assert torch.equal(at_inference, at_training), (
            f"inference inputs differ from training inputs for rows {rows[:5].tolist()}: max difference "
            f"{(at_inference.double() - at_training.double()).abs().max().item():.3g}"
        )


def test_probabilities_have_one_column_per_class_and_rows_summing_to_one(predictor, held_out):
    probabilities = predictor.predict_proba(held_out.read())
    assert probabilities.shape == (len(held_out), len(predictor.classes)), probabilities.shape
    assert ((probabilities >= 0) & (probabilities <= 1)).all(), f"a probability outside [0, 1]: {probabilities}"
    sums = probabilities.sum(axis=1)
    assert np.allclose(sums, 1, atol=1e-5), f"row sums {sums[:5]}"


def test_prediction_table_has_label_confidence_and_a_probability_per_class(predictor, held_out):
    predictions = predictor.predict(held_out.read())
    expected = ["label", "confidence", *[f"probability_{name}" for name in predictor.classes]]
    assert list(predictions.columns) == expected, list(predictions.columns)
    assert predictions.index.equals(held_out.read().index), "predictions are not aligned with the inputs"
    probabilities = predictions[[f"probability_{name}" for name in predictor.classes]].to_numpy()
    assert np.allclose(predictions["confidence"], probabilities.max(axis=1))
    best = [predictor.classes[i] for i in probabilities.argmax(axis=1)]
    assert predictions["label"].tolist() == best, "label is not the most probable class"


def test_batch_prediction_equals_one_by_one_prediction(predictor, held_out):
    inputs = held_out.read().iloc[:12]
    batch = predictor.predict_proba(inputs)
    for i, item in enumerate(items_of(inputs)):
        single = predictor.predict_one(item)
        one = np.array([single.probabilities[name] for name in predictor.classes])
        assert np.allclose(one, batch[i], rtol=0, atol=1e-6), f"item {i}: alone {one}, in the batch {batch[i]}"
        assert single.label == predictor.classes[int(batch[i].argmax())], f"item {i}: different label alone"


def test_score_is_the_accuracy_on_labelled_examples(any_predictor, held_out):
    predicted = any_predictor.predict(held_out.read())["label"]
    expected = float((predicted.to_numpy() == held_out.labels).mean())
    assert any_predictor.score(held_out) == {"accuracy": pytest.approx(expected), "rows": len(held_out)}


def test_empty_input_is_a_value_error(any_predictor, held_out):
    with pytest.raises(ValueError, match=r"no rows|no images|no texts|empty"):
        any_predictor.predict(held_out.read().iloc[:0])


def test_predictions_do_not_depend_on_the_input_index(predictor, held_out):
    inputs = held_out.read().iloc[:6]
    shuffled = inputs.set_axis([10, 3, 7, 0, 99, 5])
    assert np.array_equal(predictor.predict_proba(shuffled), predictor.predict_proba(inputs))
    assert predictor.predict(shuffled).index.tolist() == [10, 3, 7, 0, 99, 5]


def test_labels_round_trip_through_ids_and_an_unknown_label_is_refused(preprocessor, embedded_examples):
    labels = embedded_examples.labels[:50]
    ids = preprocessor.encode_labels(labels)
    assert ids.dtype == np.int64, ids.dtype
    assert preprocessor.decode_labels(ids) == [str(label) for label in labels], "decode(encode(labels)) differs"
    with pytest.raises(ValueError, match=r"unknown label\(s\) \['no-such-class'\]"):
        preprocessor.encode_labels([labels[0], "no-such-class"])


# The entries of a checkpoint that serving reads; the property below damages them at any depth.
SERVED = ("model_name", "model_options", "model_state", "preprocessor")
MUTATIONS = ("drop", "rename", "to-text", "to-none", "to-number", "to-list")
REPLACEMENTS = {"to-text": "x", "to-none": None, "to-number": 7, "to-list": [1]}


@pytest.fixture
def saved(make_model, preprocessor, tmp_path_factory):
    """(payload of a valid checkpoint of the first registered model, a folder to write damaged copies in)."""
    name, options = available_models()[0], {"hidden_size": 16, "depth": 2, "dropout": 0.1}
    model = make_model(name, **options).cpu()
    payload = Checkpoint(
        model_name=name,
        model_options=options,
        model_state=model.state_dict(),
        preprocessor=preprocessor.state_dict(),
        config={},
        epoch=0,
        rng_state=capture_rng_state(),
    ).to_payload()
    return payload, tmp_path_factory.mktemp("damaged")


def written(payload: dict, path):
    """``payload`` written as ``torch.save`` writes it (``save_checkpoint`` takes only a whole ``Checkpoint``)."""
    torch.save(payload, path)
    return path


def paths_in(value, prefix=()):
    """The path (keys and list positions) of every entry at any depth, tensors and texts taken whole."""
    children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in children:
        yield (*prefix, key)
        yield from paths_in(child, (*prefix, key))


def damaged(payload: dict, path: tuple, mutation: str) -> dict:
    """``payload`` with ``mutation`` at ``path``: the containers on the path are copies, the rest
    (never changed by saving or serving) is shared."""
    *parents, last = path
    copy = holder = dict(payload)
    for key in parents:
        child = holder[key]
        holder[key] = child = list(child) if isinstance(child, list) else dict(child)
        holder = child
    if mutation == "drop" or (mutation == "rename" and isinstance(holder, list)):
        del holder[last]
    elif mutation == "rename":
        holder[f"{last}_renamed"] = holder.pop(last)
    else:
        holder[last] = REPLACEMENTS[mutation]
    return copy


def retypes(payload: dict, path: tuple, mutation: str) -> bool:
    """Whether ``mutation`` at ``path`` changes what is there (not a value for another of its type)."""
    value = payload
    for key in path:
        value = value[key]
    return mutation not in REPLACEMENTS or type(value) is not type(REPLACEMENTS[mutation])


def test_a_checkpoint_missing_a_preprocessing_entry_or_with_an_unknown_model_option_is_refused_naming_it(saved):
    payload, folder = saved
    entry = next(iter(payload["preprocessor"]))
    path = written(damaged(payload, ("preprocessor", entry), "drop"), folder / "lacks.pt")
    with pytest.raises(CheckpointError, match=rf"lacks\.pt: .*lacks \['{entry}'\]"):
        Predictor.from_checkpoint(path)
    payload["model_options"]["colour"] = "blue"
    path = written(payload, folder / "unknown.pt")
    with pytest.raises(CheckpointError, match=r"unknown\.pt: damaged checkpoint: .*'colour'"):
        Predictor.from_checkpoint(path)


def test_a_checkpoint_damaged_anywhere_serving_reads_is_refused_or_serves_the_same(saved, held_out):
    """Dropping, renaming or retyping any entry serving reads, at any depth (every one, each way),
    ends in the project's one-line CheckpointError, never in a traceback or other predictions.
    (Another value of the same type is not a damage a checkpoint can show without a digest.)"""
    payload, folder = saved
    inputs = held_out.read(range(8))
    expected = Predictor.from_checkpoint(written(payload, folder / "valid.pt")).predict_proba(inputs)
    paths = [path for top in SERVED for path in [(top,), *paths_in(payload[top], (top,))]]
    wrong = []
    cases = [case for case in itertools.product(paths, MUTATIONS) if retypes(payload, *case)]
    for path, mutation in cases:
        checkpoint = folder / "damaged.pt"
        torch.save(damaged(payload, path, mutation), checkpoint)  # as a damaged file holds it (unchecked)
        try:
            served = Predictor.from_checkpoint(checkpoint).predict_proba(inputs)
        except CheckpointError as err:
            if "\n" in str(err) or "damaged.pt" not in str(err):
                wrong.append(f"{mutation} {path}: {err!r} is not one line naming the file")
        except Exception as err:  # any other error is the traceback this test looks for
            wrong.append(f"{mutation} {path}: {type(err).__name__}: {err}")
        else:
            if not np.allclose(served, expected, atol=1e-6):
                wrong.append(f"{mutation} {path}: served other predictions")
    assert not wrong, f"{len(wrong)} of {len(cases)} damaged checkpoints:\n" + "\n".join(wrong[:20])
