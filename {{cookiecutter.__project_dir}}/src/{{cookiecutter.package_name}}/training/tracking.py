"""Tracked runs: every ``train`` is logged to MLflow where the ``track`` extra is installed.

The run folder stays the source of truth (``runs.py``): tracking copies what it holds into an
MLflow run named like the folder, so that runs can be compared over weeks in ``mlflow ui``:

- parameters: every setting of ``config.json``;
- metrics: each score of each epoch (``train_<score>``, ``val_<score>``, step = epoch), and
  the test split's (``test_<score>``) with the kept epoch;
- tags: the data's path and sha256, the git commit, torch's build, the run folder;
- artifacts: every file of the run folder (checkpoint, metrics, config, environment, card,
  report).

Where: ``--tracking-uri``, else ``MLFLOW_TRACKING_URI`` where set, else a SQLite database,
``mlflow.db``, beside the run folder (in ``runs/`` for the runs ``train`` names), with the
artifacts in ``mlartifacts/`` next to it: a real database and no server to start.
``mlflow ui --backend-store-uri sqlite:///runs/mlflow.db`` shows the runs. ``--no-track``
leaves MLflow out (``SWITCH`` set to 0 for every run); without the extra nothing is tracked and
nothing is said, unless a tracking URI was given. MLflow's own log lines are kept to warnings.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ..config import TrainConfig
from .metrics import EpochRecord

DATABASE = "mlflow.db"
ARTIFACTS = "mlartifacts"
# The experiment runs are logged to (MLflow creates it on the first run).
EXPERIMENT = "{{ cookiecutter.project_slug }}"
# MLflow takes at most this many entries of a kind in one call.
BATCH = 100
# "0" turns tracking off for every run of this process and of the processes it starts (torchrun's):
# the test suite sets it for its many short runs in temporary folders. --no-track turns one run's off.
SWITCH = "{{ cookiecutter.package_name | upper }}_TRACK"


def tracking_available() -> bool:
    """Whether the ``track`` extra (MLflow) is installed."""
    try:
        import mlflow  # noqa: F401
    except ModuleNotFoundError as err:
        if (err.name or "").split(".")[0] != "mlflow":
            raise
        return False
    return True


def require_tracking(config: TrainConfig) -> None:
    """Refuse a run that names a tracking URI where MLflow is not installed: it asked to be tracked."""
    if config.track and config.tracking_uri and not tracking_available():
        raise ValueError(
            f"--tracking-uri {config.tracking_uri} needs the track extra (mlflow is not installed): "
            "pip install -e '.[track]' in the project folder, or --no-track"
        )


def tracking_uri(config: TrainConfig, run_folder: Path) -> str:
    """Where the run is logged: the URI given, else MLFLOW_TRACKING_URI, else SQLite beside the run folder."""
    given = config.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    return given or f"sqlite:///{(run_folder.parent / DATABASE).resolve()}"


def track_run(
    config: TrainConfig, run_folder: Path, history: Sequence[EpochRecord], metrics: dict[str, Any]
) -> str | None:
    """Log the finished run in ``run_folder`` to MLflow; the MLflow run's id, or None where not tracked."""
    if not config.track or os.environ.get(SWITCH) == "0" or not tracking_available():
        return None
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    for name in ("mlflow", "alembic"):  # "Creating initial MLflow database tables...": not the user's news
        logging.getLogger(name).setLevel(logging.WARNING)
    uri = tracking_uri(config, run_folder)
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    if experiment is not None:
        experiment_id = experiment.experiment_id
    else:  # the artifacts of the default store go beside its database, not into the working folder
        artifacts = (run_folder.parent / ARTIFACTS).resolve().as_uri() if uri.startswith("sqlite:") else None
        experiment_id = client.create_experiment(EXPERIMENT, artifact_location=artifacts)
    run = client.create_run(experiment_id, run_name=run_folder.name, tags=_tags(run_folder))
    run_id = run.info.run_id
    try:
        now = int(time.time() * 1000)
        settings = sorted(config.to_dict().items())
        params = [Param(name, value if isinstance(value, str) else json.dumps(value)) for name, value in settings]
        values = [
            Metric(f"{part}_{name}", value, now, record.epoch)
            for record in history
            for part, scores in (("train", record.train), ("val", record.val))
            for name, value in scores.items()
        ]
        kept = int(metrics["kept_epoch"])
        values += [
            Metric(name, float(value), now, kept)
            for name, value in metrics.items()
            if name.startswith("test_") and isinstance(value, int | float)
        ]
        for chunk in _chunks(params):
            client.log_batch(run_id, params=chunk)
        for chunk in _chunks(values):
            client.log_batch(run_id, metrics=chunk)
        client.set_tag(run_id, "mlflow.note.content", f"Trained by `train` into {run_folder}.")
        client.log_artifacts(run_id, str(run_folder))
    except BaseException:
        client.set_terminated(run_id, status="FAILED")
        raise
    client.set_terminated(run_id)
    return run_id


def _tags(run_folder: Path) -> dict[str, str]:
    """The run's data, code and machine, from its ``environment.json``."""
    tags = {"run_folder": str(run_folder.resolve())}
    try:
        environment = json.loads((run_folder / "environment.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return tags
    tags["data.path"] = str(environment.get("data", {}).get("path"))
    tags["data.sha256"] = str(environment.get("data", {}).get("sha256"))
    tags["torch"] = str(environment.get("torch"))
    git = environment.get("git") or {}
    if git:
        tags["mlflow.source.git.commit"] = str(git.get("commit"))
        tags["git.uncommitted_changes"] = str(git.get("uncommitted_changes"))
    return tags


def _chunks(entries: list[Any]) -> Iterator[list[Any]]:
    for start in range(0, len(entries), BATCH):
        yield entries[start : start + BATCH]
