"""The model contracts on a CUDA device: the tensors really are there, results agree with the CPU."""

from __future__ import annotations

import copy

import pytest
import torch

from {{ cookiecutter.package_name }}.config import TrainConfig
from {{ cookiecutter.package_name }}.inference import Predictor
from {{ cookiecutter.package_name }}.models import build_for
from {{ cookiecutter.package_name }}.testing import assert_gradients_flow, assert_state_dicts_equal
from {{ cookiecutter.package_name }}.training import (
    classification_loss,
    deterministic_mode,
    fit,
    seed_everything,
    train_one_epoch,
)

pytestmark = pytest.mark.gpu

# GPU kernels sum in another order than CPU ones: float32 results agree to about 1e-6 relative;
# these bounds leave room for that and fail on anything like a real difference.
OUTPUT_TOLERANCE = {"rtol": 1e-4, "atol": 1e-5}
GRADIENT_TOLERANCE = {"rtol": 1e-3, "atol": 1e-5}


@pytest.fixture
def cpu_batch(tiny_dataset, preprocessor):
    """The tiny batch on the CPU, to be copied to the GPU by each test."""
    return preprocessor.collate([tiny_dataset[i] for i in range(len(tiny_dataset))])


@pytest.fixture
def cpu_model(model_name, preprocessor):
    """A tiny model built on the CPU with the test's seed, to be copied to the GPU."""
    return build_for(model_name, preprocessor, hidden_size=16, dropout=0.2)


def assert_on(device: torch.device, tensor: torch.Tensor, what: str) -> None:
    assert tensor.device.type == device.type, f"{what} is on {tensor.device}, expected {device}"


def test_model_batch_and_loss_really_live_on_the_gpu(cuda, cpu_model, cpu_batch):
    model = cpu_model.to(cuda)
    features, labels = (t.to(cuda) for t in cpu_batch)
    loss = classification_loss()(model(features), labels)
    for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
        assert_on(cuda, tensor, f"model tensor '{name}'")
    assert_on(cuda, features, "the batch")
    assert_on(cuda, loss, "the loss")


def test_forward_and_backward_on_the_gpu_give_finite_nonzero_gradients_there(cuda, cpu_model, cpu_batch):
    model = cpu_model.to(cuda)
    features, labels = (t.to(cuda) for t in cpu_batch)
    gradients = assert_gradients_flow(model, features, labels)
    for name, gradient in gradients.items():
        assert_on(cuda, gradient, f"gradient of '{name}'")


def test_gpu_outputs_and_gradients_match_the_cpu_within_tolerance(cuda, cpu_model, cpu_batch):
    features, labels = cpu_batch
    gpu_model = copy.deepcopy(cpu_model).to(cuda)
    cpu_model.eval()
    gpu_model.eval()
    loss_fn = classification_loss()
    cpu_logits, gpu_logits = cpu_model(features), gpu_model(features.to(cuda))
    torch.testing.assert_close(gpu_logits.cpu(), cpu_logits, **OUTPUT_TOLERANCE, msg="GPU logits differ from CPU")
    loss_fn(cpu_logits, labels).backward()
    loss_fn(gpu_logits, labels.to(cuda)).backward()
    for (name, cpu_param), gpu_param in zip(cpu_model.named_parameters(), gpu_model.parameters(), strict=True):
        torch.testing.assert_close(
            gpu_param.grad.cpu(), cpu_param.grad, **GRADIENT_TOLERANCE, msg=f"GPU gradient of '{name}' differs"
        )


def test_deterministic_mode_repeats_training_bit_for_bit_on_the_gpu(cuda, model_name, preprocessor, cpu_batch):
    features, labels = (t.to(cuda) for t in cpu_batch)

    def run() -> torch.nn.Module:
        seed_everything(0)
        model = build_for(model_name, preprocessor, dropout=0.2).to(cuda)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
        train_one_epoch(model, [(features, labels)] * 5, classification_loss(), optimizer, cuda)
        return model

    with deterministic_mode(True):
        first, second = run(), run()
    assert_on(cuda, next(first.parameters()), "the trained model")
    assert_state_dicts_equal(first.state_dict(), second.state_dict(), "weights of two deterministic GPU runs")


@pytest.mark.parametrize("amp", [False, True], ids=["float32", "mixed-precision"])
def test_a_short_training_run_on_the_gpu_lowers_the_loss(cuda, tmp_path, amp):
    config = TrainConfig(epochs=6, learning_rate=1e-2, device=str(cuda), amp=amp, output_dir=str(tmp_path))
    result = fit(config, show_progress=False)
    losses = [round(record.train["loss"], 4) for record in result.history]
    assert result.metrics["device"].startswith("cuda"), f"trained on {result.metrics['device']}"
    assert_on(cuda, next(result.model.parameters()), "the trained model")
    assert max(losses[-2:]) < losses[0] / 3, f"training loss per epoch on the GPU {losses}: it should fall 3x"
    chance = 1 / len(result.preprocessor.classes)
    assert result.metrics["val_accuracy"] > chance, f"validation accuracy {result.metrics['val_accuracy']:.3f}"


def test_a_checkpoint_trained_on_the_gpu_serves_on_the_cpu_with_the_same_predictions(cuda, tmp_path, embedded_examples):
    result = fit(TrainConfig(epochs=2, device=str(cuda), output_dir=str(tmp_path)), show_progress=False)
    on_gpu = Predictor(result.model, result.preprocessor, cuda)
    on_cpu = Predictor.from_checkpoint(result.checkpoint_path, device="cpu")
    assert_on(cuda, next(on_gpu.model.parameters()), "the GPU predictor's model")
    inputs = embedded_examples.read().iloc[:50]
    torch.testing.assert_close(
        torch.as_tensor(on_cpu.predict_proba(inputs)), torch.as_tensor(on_gpu.predict_proba(inputs)), **OUTPUT_TOLERANCE
    )
