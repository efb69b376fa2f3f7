"""Mixed precision and several GPUs: finite steps under autocast, two-GPU DDP learns what one GPU learns."""

from __future__ import annotations

import json

import pytest
import torch

import {{ cookiecutter.package_name }} as package
from {{ cookiecutter.package_name }}.checkpoint import load_checkpoint
from {{ cookiecutter.package_name }}.config import TrainConfig
from {{ cookiecutter.package_name }}.launch import run_torchrun
from {{ cookiecutter.package_name }}.testing import trainable_parameters
from {{ cookiecutter.package_name }}.training import classification_loss, fit

pytestmark = pytest.mark.gpu

# Dropout off (each process would draw its own masks); the global batch is split across GPUs. In
# float64, as on the CPU (tests/distributed/conftest.py): float32 rounding can tip a max-pooling choice.
DDP_SETTINGS = {"epochs": 3, "dropout": 0.0, "batch_size": 32, "seed": 0, "precision": "float64"}
# Two GPUs sum gradients in another order than one: float64 weights agree far closer than this.
DDP_TOLERANCE = {"rtol": 1e-4, "atol": 1e-4}


def test_a_mixed_precision_step_gives_finite_loss_and_gradients(cuda, make_model, model_name, tiny_batch):
    model = make_model(model_name).to(cuda).train()
    features, labels = (t.to(cuda) for t in tiny_batch)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    scaler = torch.amp.GradScaler("cuda")
    with torch.autocast("cuda", dtype=torch.float16):
        logits = model(features)
        loss = classification_loss()(logits, labels)
    assert logits.dtype == torch.float16, f"autocast did not run the model in float16: {logits.dtype}"
    assert torch.isfinite(loss), f"mixed-precision loss is {loss.item()}"
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)
    broken = [name for name, p in trainable_parameters(model).items() if not torch.isfinite(p.grad).all()]
    assert not broken, f"non-finite gradients under mixed precision: {broken}"
    scaler.step(optimizer)
    scaler.update()
    assert scaler.get_scale() > 0


def test_two_gpus_learn_the_weights_one_gpu_learns(cuda, tmp_path):
    if torch.cuda.device_count() < 2:
        pytest.skip(f"needs two CUDA devices, {torch.cuda.device_count()} visible")
    fit(TrainConfig(output_dir=str(tmp_path / "one"), device="cuda", **DDP_SETTINGS), show_progress=False)
    options = [f"--{name.replace('_', '-')}={value}" for name, value in DDP_SETTINGS.items()]
    result = run_torchrun(
        "-m",
        package.__name__,
        "train",
        f"--output-dir={tmp_path / 'two'}",
        "--device=cuda",
        *options,
        processes=2,
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode == 0, f"torchrun on two GPUs failed:\n{result.stderr[-4000:]}"
    metrics = json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert metrics["processes"] == 2, metrics
    assert metrics["device"].startswith("cuda"), metrics
    one = load_checkpoint(tmp_path / "one" / "checkpoint.pt").model_state
    two = load_checkpoint(tmp_path / "two" / "checkpoint.pt").model_state
    for name, weights in one.items():
        torch.testing.assert_close(two[name], weights, **DDP_TOLERANCE, msg=lambda m, n=name: f"{n}: {m}")
