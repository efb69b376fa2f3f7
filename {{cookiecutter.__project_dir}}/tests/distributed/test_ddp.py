"""Scaling out with torchrun (gloo, two CPU processes) does not change what is learned."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from torch import distributed

import {{ cookiecutter.package_name }} as package
from {{ cookiecutter.package_name }}.data import load_examples
from {{ cookiecutter.package_name }}.inference import Predictor
from {{ cookiecutter.package_name }}.launch import run_torchrun

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not distributed.is_available(), reason="this torch build has no torch.distributed"),
]

CRASH_SCRIPT = """
import os, sys
from PACKAGE.config import TrainConfig
from PACKAGE.training import loop

real_epoch = loop.train_one_epoch

def epoch_that_fails_on_rank_1(*args, **kwargs):
    if os.environ["RANK"] == "1":
        raise RuntimeError("injected failure in rank 1")
    return real_epoch(*args, **kwargs)

loop.train_one_epoch = epoch_that_fails_on_rank_1
loop.fit(TrainConfig(output_dir=sys.argv[1], device="cpu", epochs=200))
"""

# `train` with every file the package writes (all go through files.atomic_open) logged by the rank that wrote it.
WRITES_SCRIPT = """
import os, sys
from PACKAGE import files

real_open = files.atomic_open

def logged_open(path, *args, **kwargs):
    with open(os.path.join(sys.argv[1], "written-by-rank-" + os.environ["RANK"]), "a") as log:
        log.write(os.path.basename(path) + "\\n")
    return real_open(path, *args, **kwargs)

files.atomic_open = logged_open  # before the modules that write import it
from PACKAGE.cli import main

sys.exit(main(["train", "--output-dir", os.path.join(sys.argv[1], "out"), *sys.argv[2:]]))
"""

# One run with every read of examples counted by phase: fitting the preprocessing, preparing the
# datasets (where the task transforms them once), and the epochs (with the final evaluation).
READS_SCRIPT = """
import json, os, sys
from PACKAGE.config import TrainConfig
from PACKAGE.testing import count_reads
from PACKAGE.training import fit

settings = json.loads(sys.argv[2])
with count_reads() as counts:
    result = fit(TrainConfig(output_dir=os.path.join(sys.argv[1], "out"), report=False, num_workers=0, **settings))
rows = {part: len(getattr(result.split, part)) for part in ("train", "val", "test")}
with open(os.path.join(sys.argv[1], "reads-" + os.environ["RANK"] + ".json"), "w") as log:
    json.dump({**counts, "rows": rows}, log)
"""


@pytest.fixture(scope="module")
def ddp(tmp_path_factory: pytest.TempPathFactory, train_options: list[str]) -> Path:
    """The output folder of the same training run by torchrun on two processes."""
    root = tmp_path_factory.mktemp("ddp")
    output = f"--output-dir={root / 'out'}"
    result = run_torchrun("-m", package.__name__, "train", output, *train_options, processes=2, cwd=root, timeout=180)
    assert result.returncode == 0, f"torchrun failed:\n{result.stderr[-4000:]}"
    return root / "out"


def test_two_processes_learn_the_same_weights_as_one(
    ddp: Path, assert_learned_what_one_process_learns: Callable[[Path, str], None]
) -> None:
    metrics = json.loads((ddp / "metrics.json").read_text())
    assert metrics["processes"] == 2, metrics
    assert_learned_what_one_process_learns(ddp, "DDP training on two processes")


def test_metrics_are_reduced_over_both_processes(single: Path, ddp: Path) -> None:
    alone = json.loads((single / "metrics.json").read_text())
    reduced = json.loads((ddp / "metrics.json").read_text())
    # Weights equal to float64's rounding give the same predictions and losses to that rounding
    # (relative sqrt(eps)); a row left out of the reduction or counted twice moves an accuracy by
    # 1/rows and a loss by about as much.
    rounding = math.sqrt(np.finfo(np.float64).eps)
    for key in ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "test_accuracy"):
        assert reduced[key] == pytest.approx(alone[key], rel=rounding, abs=0), (
            f"{key}: {reduced[key]} under DDP, {alone[key]} alone"
        )


def test_the_report_under_ddp_covers_the_whole_test_split(ddp: Path, read_report) -> None:
    # Each process scores only its share of the test rows; the report is of all of them.
    metrics = json.loads((ddp / "metrics.json").read_text())
    _, counts = read_report(ddp).confusion()
    total = sum(map(sum, counts))
    assert total == metrics["rows"]["test"], f"the report counts {total} test rows of {metrics['rows']['test']}"
    right = sum(counts[i][i] for i in range(len(counts)))
    assert right / total == pytest.approx(metrics["test_accuracy"]), f"{right}/{total} right in the report"


def test_only_rank_0_writes_files(tmp_path: Path, train_options: list[str]) -> None:
    script = tmp_path / "writes.py"
    script.write_text(WRITES_SCRIPT.replace("PACKAGE", package.__name__))
    options = [*train_options, "--epochs=1"]
    result = run_torchrun(str(script), str(tmp_path), *options, processes=2, cwd=tmp_path, timeout=180)
    assert result.returncode == 0, f"torchrun failed:\n{result.stderr[-4000:]}"
    by_rank_0 = set((tmp_path / "written-by-rank-0").read_text().split())
    for name in ("config.json", "checkpoint.pt", "metrics.json", "report.html", "confusion.png"):
        assert name in by_rank_0, f"rank 0 did not write {name}; it wrote {sorted(by_rank_0)}"
    by_rank_1 = tmp_path / "written-by-rank-1"
    assert not by_rank_1.exists(), f"rank 1 wrote {sorted(set(by_rank_1.read_text().split()))}: rank 0 alone writes"


def test_each_process_reads_only_its_share_and_rank_0_alone_fits_the_preprocessing(
    tmp_path: Path, quick_data: str | None
) -> None:
    script = tmp_path / "reads.py"
    script.write_text(READS_SCRIPT.replace("PACKAGE", package.__name__))
    epochs, batch_size = 2, 32
    settings = json.dumps({"epochs": epochs, "batch_size": batch_size, "seed": 0, "device": "cpu", "data": quick_data})
    result = run_torchrun(str(script), str(tmp_path), settings, processes=2, cwd=tmp_path, timeout=180)
    assert result.returncode == 0, f"torchrun failed:\n{result.stderr[-4000:]}"
    reads = [json.loads((tmp_path / f"reads-{rank}.json").read_text()) for rank in (0, 1)]
    rows = reads[0]["rows"]
    assert reads[0]["fit"] > 0, "rank 0 read no example to fit the preprocessing"
    assert reads[1]["fit"] == 0, (
        f"rank 1 read {reads[1]['fit']} examples to fit the preprocessing: rank 0 alone fits, the others get its state"
    )
    # Every epoch reads the training and validation rows, the end the validation and test rows once more;
    # then rank 0 alone scores the whole test split again for the model card (and the report).
    everything = rows["train"] * epochs + rows["val"] * (epochs + 1) + rows["test"]
    uneven = -(-rows["train"] // batch_size) * epochs + 3  # a batch of an odd size gives one process a row more
    for rank, counted in enumerate(reads):
        card = rows["test"] if rank == 0 else 0
        assert counted["epochs"] <= everything / 2 + uneven + card, (
            f"rank {rank} read {counted['epochs']} examples in {epochs} epochs of {everything} reads in all: "
            "more than its half (every process reading every row?)"
        )


def test_checkpoint_written_under_ddp_serves_in_one_process(
    single: Path, ddp: Path, quick_data: str | None, weight_tolerance: float
) -> None:
    inputs = load_examples(quick_data).read()
    from_ddp = Predictor.from_checkpoint(ddp / "checkpoint.pt").predict_proba(inputs)
    from_single = Predictor.from_checkpoint(single / "checkpoint.pt").predict_proba(inputs)
    np.testing.assert_allclose(
        from_ddp, from_single, atol=weight_tolerance, err_msg="DDP checkpoint predicts differently"
    )


def test_a_crash_in_one_rank_fails_the_run_instead_of_hanging(tmp_path: Path) -> None:
    script = tmp_path / "crash.py"
    script.write_text(CRASH_SCRIPT.replace("PACKAGE", package.__name__))
    result = run_torchrun(str(script), str(tmp_path / "out"), processes=2, cwd=tmp_path, timeout=90)
    assert result.returncode != 0, "torchrun reported success although rank 1 raised"
    assert "injected failure in rank 1" in result.stderr, result.stderr[-3000:]
    assert not (tmp_path / "out" / "metrics.json").exists(), "a failed run wrote its metrics"


def test_torchrun_leaves_nothing_in_the_system_temporary_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every torchrun of this tier keeps its log folders (torchelastic_*) under its working folder."""
    system_temporary = tmp_path / "system-tmp"
    system_temporary.mkdir()
    monkeypatch.setenv("TMPDIR", str(system_temporary))  # what torchrun would use, were it not told otherwise
    script = tmp_path / "hello.py"
    script.write_text("print('hello')\n")
    result = run_torchrun(str(script), processes=2, cwd=tmp_path, timeout=90)
    assert result.returncode == 0, result.stderr[-3000:]
    left = sorted(p.name for p in system_temporary.iterdir())
    assert left == [], f"torchrun left {left} in the temporary folder"
