"""What leaves the project is what was tested: every registered model exports to a torch.export
program and an ONNX model that give its probabilities on the golden set, one example at a time
and in a large batch; `--backend onnx` answers as the default backend; a stale or failed export
is refused, not served."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from {{ cookiecutter.package_name }} import cli
from {{ cookiecutter.package_name }}.checkpoint import Checkpoint, save_checkpoint
from {{ cookiecutter.package_name }}.config import TrainConfig
from {{ cookiecutter.package_name }}.data import load_examples
from {{ cookiecutter.package_name }}.export import PARITY_ROWS, TOLERANCE, _exported_program, export_checkpoint
from {{ cookiecutter.package_name }}.inference import Predictor
from {{ cookiecutter.package_name }}.inference.exported import ONNX_FILE, PT2_FILE, ExportedPredictor, export_folder
from {{ cookiecutter.package_name }}.task import read_all
from {{ cookiecutter.package_name }}.testing import TINY_MODEL_OPTIONS

pytestmark = pytest.mark.slow
for module in ("onnx", "onnxscript", "onnxruntime"):
    pytest.importorskip(module, reason="export needs the export extra: pip install -e '.[test,serve,export]'")

GOLDEN = Path(__file__).parents[1] / "regression" / "{% if cookiecutter.task == 'image' %}golden{% else %}golden.csv{% endif %}"


def assert_same_answers(got: np.ndarray, expected: np.ndarray, what: str) -> None:
    """Probabilities within TOLERANCE of the eager model's, and its labels wherever it is not torn
    between two classes (closer than twice the tolerance, where either answer is right)."""
    assert got.shape == expected.shape, f"{what}: probabilities of shape {got.shape}, the model's {expected.shape}"
    difference = float(np.abs(got - expected).max())
    assert difference <= TOLERANCE, f"{what}: probabilities differ from the model's by up to {difference:.2g}"
    top_two = np.sort(expected, axis=1)[:, -2:]
    decided = top_two[:, 1] - top_two[:, 0] > 2 * TOLERANCE
    changed = np.flatnonzero(decided & (got.argmax(axis=1) != expected.argmax(axis=1)))
    assert not len(changed), f"{what}: {len(changed)} labels differ from the model's, first at example {changed[0]}"


@pytest.fixture
def model_checkpoint(model_name, make_model, preprocessor, tmp_path) -> Path:
    """A checkpoint of each registered model (tiny, freshly initialised) with the fitted preprocessing,
    as `train` writes it; its test split is the embedded data's."""
    model = make_model(model_name).cpu()
    checkpoint = Checkpoint(
        model_name=model_name,
        model_options=dict(TINY_MODEL_OPTIONS),
        model_state=model.state_dict(),
        preprocessor=preprocessor.state_dict(),
        config=TrainConfig(seed=0, device="cpu").to_dict(),
        epoch=0,
    )
    return save_checkpoint(checkpoint, tmp_path / "run" / "checkpoint.pt")


def test_every_model_exports_and_both_files_answer_as_it_does_on_the_golden_set(model_checkpoint, embedded_examples):
    report = export_checkpoint(model_checkpoint)
    assert report.folder == export_folder(model_checkpoint)
    assert sorted(report.differences) == [ONNX_FILE, PT2_FILE], report
    eager = Predictor.from_checkpoint(model_checkpoint)
    program = torch.export.load(report.folder / PT2_FILE).module()
    served = ExportedPredictor(report.folder, checkpoint=model_checkpoint)
    golden = read_all(load_examples(GOLDEN).items)
    large = read_all(embedded_examples.subset(np.arange(min(PARITY_ROWS, len(embedded_examples)))).items)
    for inputs, what in ((golden, "the golden set as one batch"), (large, f"{len(large)} examples as one batch")):
        expected = eager.predict_proba(inputs)
        features = eager.features(inputs)
        with torch.no_grad():
            from_program = torch.softmax(program(features), dim=1).numpy()
        assert_same_answers(from_program, expected, f"{PT2_FILE}, {what}")
        assert_same_answers(served.predict_proba(inputs), expected, f"{ONNX_FILE} in ONNX Runtime, {what}")
    for row in range(len(golden)):  # a batch of one
        one = golden.iloc[row : row + 1]
        expected = eager.predict_proba(one)
        with torch.no_grad():
            from_program = torch.softmax(program(eager.features(one)), dim=1).numpy()
        assert_same_answers(from_program, expected, f"{PT2_FILE}, golden example {row} alone")
        assert_same_answers(served.predict_proba(one), expected, f"{ONNX_FILE}, golden example {row} alone")


@pytest.fixture(scope="module")
def exported_run(trained, tmp_path_factory) -> Path:
    """The trained run's checkpoint, copied to a folder of its own and exported there by the command line."""
    checkpoint = shutil.copy(trained.checkpoint_path, tmp_path_factory.mktemp("exported") / "checkpoint.pt")
    assert cli.main(["export", "--checkpoint", str(checkpoint)]) == 0
    return Path(checkpoint)


@pytest.fixture
def onnx_batches(monkeypatch) -> list[int]:
    """The size of every batch ONNX Runtime answered, as the commands run."""
    sizes: list[int] = []
    predict_proba = ExportedPredictor.predict_proba

    def recording(self, inputs):
        sizes.append(len(inputs))
        return predict_proba(self, inputs)

    monkeypatch.setattr(ExportedPredictor, "predict_proba", recording)
    return sizes


def test_predict_with_the_onnx_backend_writes_what_the_torch_backend_writes(
    exported_run, request_csv, tmp_path, onnx_batches
):
    outputs = {backend: tmp_path / f"{backend}.csv" for backend in ("torch", "onnx")}
    for backend, output in outputs.items():
        args = ["--input", str(request_csv), "--output", str(output), "--backend", backend, "--batch-size", "3"]
        assert cli.main(["predict", "--checkpoint", str(exported_run), *args]) == 0
    assert onnx_batches == [3, 3, 3, 1], f"ONNX Runtime answered batches of {onnx_batches}, not 10 inputs 3 at a time"
    torch_csv, onnx_csv = (pd.read_csv(outputs[backend], dtype={"label": str}) for backend in ("torch", "onnx"))
    assert list(onnx_csv.columns) == list(torch_csv.columns), f"{list(onnx_csv.columns)}, not {list(torch_csv.columns)}"
    assert onnx_csv.iloc[:, 0].tolist() == torch_csv.iloc[:, 0].tolist(), "the rows' ids differ between the backends"
    probabilities = [column for column in torch_csv.columns if column.startswith("probability_")]
    onnx_answers, torch_answers = (csv[probabilities].to_numpy() for csv in (onnx_csv, torch_csv))
    assert_same_answers(onnx_answers, torch_answers, "predict --backend onnx")
    assert (onnx_csv["label"] == torch_csv["label"]).all(), "predict --backend onnx gives other labels"


def test_evaluate_with_the_onnx_backend_scores_as_the_torch_backend(exported_run, capsys, onnx_batches):
    scores = {}
    for backend in ("torch", "onnx"):
        assert cli.main(["evaluate", "--checkpoint", str(exported_run), "--backend", backend]) == 0
        scores[backend] = capsys.readouterr().out
    assert onnx_batches, "evaluate --backend onnx did not run ONNX Runtime"
    assert scores["onnx"] == scores["torch"], scores


def test_serve_with_the_onnx_backend_serves_what_onnx_runtime_answers(
    exported_run, embedded_examples, split, monkeypatch, onnx_batches
):
    # The command line as given, up to the HTTP server it would start: the predictor it serves and
    # the description its /metadata gives, for each backend.
    pytest.importorskip("fastapi", reason="the HTTP server needs the serve extra: pip install -e '.[test,serve]'")
    from fastapi.testclient import TestClient

    from {{ cookiecutter.package_name }}.inference import server

    served: dict[str, Predictor] = {}
    for backend in ("torch", "onnx"):
        monkeypatch.setattr(server, "serve", lambda predictor, config, name=backend: served.update({name: predictor}))
        assert cli.main(["serve", "--checkpoint", str(exported_run), "--backend", backend]) == 0
    kind = type(served["onnx"]).__name__
    assert isinstance(served["onnx"], ExportedPredictor), f"serve --backend onnx serves a {kind}"
    inputs = embedded_examples.subset(split.test[:10]).read()
    by_onnx = served["onnx"].predict_proba(inputs)
    assert onnx_batches == [10], f"ONNX Runtime answered batches of {onnx_batches}"
    assert_same_answers(by_onnx, served["torch"].predict_proba(inputs), "serve --backend onnx")
    described = {}
    for backend, predictor in served.items():
        with TestClient(server.create_app(predictor), raise_server_exceptions=False) as client:
            answer = client.get("/metadata")
            assert answer.status_code == 200, f"/metadata by the {backend} backend: {answer.status_code} {answer.text}"
            described[backend] = answer.json()
    assert described["onnx"] == described["torch"], "serve describes the exported model otherwise than the checkpoint"


def test_the_onnx_backend_refuses_an_export_of_another_checkpoint(exported_run, tmp_path, assert_one_line_error):
    run = tmp_path / "run"
    shutil.copytree(exported_run.parent, run)
    retrained = torch.load(run / "checkpoint.pt", weights_only=True)
    retrained["epoch"] += 1  # any change to the checkpoint: what the export answers for is gone
    torch.save(retrained, run / "checkpoint.pt")
    args = ["predict", "--checkpoint", str(run / "checkpoint.pt"), "--input", str(GOLDEN), "--backend", "onnx"]
    assert cli.main(args) == 2
    assert_one_line_error("was exported from another checkpoint", "--overwrite")


def test_the_onnx_backend_without_an_export_says_how_to_make_one(trained, tmp_path, assert_one_line_error):
    checkpoint = shutil.copy(trained.checkpoint_path, tmp_path / "checkpoint.pt")
    assert cli.main(["evaluate", "--checkpoint", str(checkpoint), "--backend", "onnx"]) == 2
    assert_one_line_error("no export there", "export --checkpoint")


def test_export_refuses_to_replace_an_export_without_overwrite(exported_run, assert_one_line_error):
    assert cli.main(["export", "--checkpoint", str(exported_run)]) == 2
    assert_one_line_error("already exists", "--overwrite")


def test_an_export_that_does_not_answer_as_the_model_writes_nothing(trained, tmp_path, monkeypatch):
    checkpoint = shutil.copy(trained.checkpoint_path, tmp_path / "checkpoint.pt")
    monkeypatch.setattr(ExportedPredictor, "predict_proba", lambda self, inputs: np.zeros((len(inputs), 1)))
    with pytest.raises(ValueError, match=f"{ONNX_FILE} gives probabilities of shape"):
        export_checkpoint(checkpoint)
    monkeypatch.setattr("{{ cookiecutter.package_name }}.export.TOLERANCE", -1.0)  # no difference is small enough
    with pytest.raises(ValueError, match=f"{PT2_FILE} does not answer as the model does"):
        export_checkpoint(checkpoint)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["checkpoint.pt"], "an export was left behind"


class DataDependent(nn.Module):
    """A model whose control flow depends on its input's values: torch.export cannot trace it."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.float().sum() > 0:
            return self.layer(x.float().reshape(len(x), -1)[:, :1])
        return -self.layer(x.float().reshape(len(x), -1)[:, :1])


class FixedBatch(nn.Module):
    """A model that reads the batch size as a Python number: traced, it serves that size only."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x.float().reshape(int(x.shape[0]), -1)[:, :1])


def test_a_model_the_exporter_cannot_take_is_named_with_the_exporters_reason(tiny_batch):
    features, _ = tiny_batch
    with pytest.raises(ValueError, match=r"torch.export cannot export model 'branchy': \S"):
        _exported_program(DataDependent(), features.cpu(), "branchy")
    rows = len(features)
    with pytest.raises(ValueError, match=rf"model 'fixed': its code fixes the batch size to the {rows} examples"):
        _exported_program(FixedBatch(), features.cpu(), "fixed")
