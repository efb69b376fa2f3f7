"""Tracked runs: `train` logs each run to MLflow (the track extra), read back here through MLflow's
own client from a real SQLite store; the run folder stays the source of truth."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }} import cli
from {{ cookiecutter.package_name }}.training import fit
from {{ cookiecutter.package_name }}.training.metrics import SCORES
from {{ cookiecutter.package_name }}.training.tracking import DATABASE, EXPERIMENT, SWITCH

pytestmark = pytest.mark.slow
mlflow = pytest.importorskip("mlflow", reason="tracking needs the track extra: pip install -e '.[test,track]'")
from mlflow.tracking import MlflowClient  # noqa: E402


@pytest.fixture(autouse=True)
def tracked(monkeypatch) -> None:
    """Tracking on, as for a user with the track extra (the suite turns it off for its other runs)."""
    monkeypatch.delenv(SWITCH, raising=False)


def tracked_runs(uri: str) -> dict[str, object]:
    """The store's runs of the project's experiment, by run name."""
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    assert experiment is not None, f"no experiment {EXPERIMENT!r} in {uri}"
    return {run.info.run_name: run for run in client.search_runs([experiment.experiment_id])}


def test_two_runs_are_tracked_and_read_back_from_the_sqlite_store(quick_config, tmp_path):
    uri = f"sqlite:///{tmp_path / 'store.db'}"
    results = {}
    for seed in (0, 1):
        config = quick_config(output_dir=str(tmp_path / f"seed-{seed}"), seed=seed, track=True, tracking_uri=uri)
        results[f"seed-{seed}"] = fit(config, show_progress=False)
    runs = tracked_runs(uri)
    assert sorted(runs) == ["seed-0", "seed-1"], f"runs in the store: {sorted(runs)}"
    client = MlflowClient(tracking_uri=uri)
    for name, result in results.items():
        run = runs[name]
        assert run.info.status == "FINISHED", run.info
        folder = tmp_path / name
        stored = json.loads((folder / "config.json").read_text())
        assert run.data.params["seed"] == json.dumps(stored["seed"]), run.data.params
        assert run.data.params["model"] == stored["model"], run.data.params
        for score in SCORES:
            steps = client.get_metric_history(run.info.run_id, f"val_{score}")
            logged = {m.step: m.value for m in steps}
            expected = {record.epoch: record.val[score] for record in result.history}
            assert logged == pytest.approx(expected), f"{name}: val_{score} by epoch {logged}, the run's {expected}"
            assert run.data.metrics[f"test_{score}"] == pytest.approx(result.metrics[f"test_{score}"])
        environment = json.loads((folder / "environment.json").read_text())
        assert run.data.tags["data.sha256"] == environment["data"]["sha256"], run.data.tags
        artifacts = {entry.path for entry in client.list_artifacts(run.info.run_id)}
        assert {"checkpoint.pt", "metrics.json", "config.json", "MODEL_CARD.md"} <= artifacts, sorted(artifacts)
        copy = Path(client.download_artifacts(run.info.run_id, "checkpoint.pt", str(tmp_path / f"{name}-download")))
        assert sha256(copy) == sha256(folder / "checkpoint.pt"), f"{name}: the tracked checkpoint is another file"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_train_tracks_into_sqlite_beside_the_run_folders_by_default(tmp_path, quick_data, monkeypatch, capsys):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    runs_dir = tmp_path / "runs"
    data = ["--data", quick_data] if quick_data else []
    args = ["train", "--epochs", "1", "--runs-dir", str(runs_dir), "--name", "first", "--no-report", *data]
    assert cli.main(args) == 0
    assert "warning" not in capsys.readouterr().err
    assert (runs_dir / DATABASE).is_file(), f"no {DATABASE} in {runs_dir}: {sorted(p.name for p in runs_dir.iterdir())}"
    runs = tracked_runs(f"sqlite:///{runs_dir / DATABASE}")
    assert list(runs) == ["first"], list(runs)
    assert runs["first"].data.tags["run_folder"] == str((runs_dir / "first").resolve())


def test_no_track_leaves_mlflow_out(quick_config, tmp_path):
    fit(quick_config(track=False, tracking_uri=f"sqlite:///{tmp_path / 'store.db'}"), show_progress=False)
    assert not (tmp_path / "store.db").exists(), "--no-track made a tracking store"
    assert not (tmp_path / DATABASE).exists()


def test_a_store_that_cannot_be_written_is_a_warning_and_the_run_stands(quick_config, tmp_path, capsys):
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    config = quick_config(track=True, tracking_uri=f"sqlite:///{blocked / 'store.db'}")
    result = fit(config, show_progress=False)
    assert result.checkpoint_path is not None, "the run wrote no checkpoint"
    assert result.checkpoint_path.is_file(), result.checkpoint_path
    err = capsys.readouterr().err
    assert "was not tracked in MLflow" in err, err
    assert "the run folder holds all of it" in err, err


def test_the_switch_turns_tracking_off_for_every_run(quick_config, tmp_path, monkeypatch):
    monkeypatch.setenv(SWITCH, "0")
    fit(quick_config(track=True, tracking_uri=f"sqlite:///{tmp_path / 'store.db'}"), show_progress=False)
    assert not (tmp_path / "store.db").exists(), f"{SWITCH}=0 and the run was tracked all the same"
