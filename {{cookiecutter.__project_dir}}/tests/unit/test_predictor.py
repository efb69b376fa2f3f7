"""Serving: raw inputs in, the training preprocessing applied, probabilities out, bad input refused.

Written against the task's seam (``task.py``), so it holds for any task and any registered model.
The task's own request checks (columns, categories, image files, texts) are in its own test files.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from {{ cookiecutter.package_name }}.inference import Predictor
from {{ cookiecutter.package_name }}.models import available_models


def items_of(inputs) -> list:
    """The raw items of a pandas object of inputs: records of a table, else the values themselves."""
    if hasattr(inputs, "columns"):
        return inputs.to_dict(orient="records")
    return list(inputs)


@pytest.fixture
def predictor(tiny_model, preprocessor, device):
    """Each registered model, untrained and tiny, with the fitted preprocessing: enough to test the plumbing."""
    return Predictor(tiny_model, preprocessor, device)


@pytest.fixture
def any_predictor(make_model, preprocessor, device):
    """A predictor around the first registered model, for checks that do not depend on the model."""
    return Predictor(make_model(available_models()[0]), preprocessor, device)


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
