"""The commands a generated project's README gives work as written, for every task."""

from __future__ import annotations

import csv
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import EMBEDDED, ENV, TASKS, run

pytestmark = pytest.mark.slow


def sh_blocks(readme: str, heading: str, language: str = "sh") -> list[str]:
    """The command lines of the ```sh blocks in the section under ``heading``, without comments."""
    section = readme.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    lines = []
    for block in re.findall(rf"```{language}\n(.*?)\n```", section, re.DOTALL):
        for line in block.splitlines():
            command = line.split(" #", 1)[0].strip()
            if command and not command.startswith("#"):
                lines.append(command)
    return lines


@pytest.mark.parametrize("task", TASKS)
def test_train_evaluate_predict_commands_of_the_readme_work(
    task: str, task_project: Callable[[str], tuple[Path, Path]]
) -> None:
    """As written, in order; the first, a default `train`, reaches the task's accuracy and draws its report."""
    project, python = task_project(task)
    data, rows, classes, threshold = EMBEDDED[task]
    commands = sh_blocks((project / "README.md").read_text(), "Train, evaluate, predict")
    assert len(commands) >= 5 and commands[0] == "my-ml-project train", commands
    for number, command in enumerate(commands):
        args = shlex.split(command)
        assert args[0] == "my-ml-project", f"not a command of the project: {command}"
        result = run(python.parent / args[0], *args[1:], cwd=project)
        if args[1] == "train":
            assert "test accuracy" in result.stdout, f"{command}: {result.stdout}"
            assert "warning" not in result.stderr, f"{command}: {result.stderr[-2000:]}"
        if number == 0:
            default_run = (project / "runs/latest").resolve()
            metrics = json.loads((default_run / "metrics.json").read_text())
            accuracy = metrics["test_accuracy"]
            assert accuracy >= threshold, f"`{command}`: held-out accuracy {accuracy:.4f} < {threshold}"
            assert f"{accuracy:.4f}" in result.stdout, result.stdout
            drawn = {"checkpoint.pt", "report.html", "loss.png", "accuracy.png", "confusion.png", "calibration.png"}
            missing = sorted(name for name in drawn if not (default_run / name).is_file())
            assert not missing, f"the default run has no {missing}; stderr: {result.stderr[-2000:]}"
        if args[1] == "evaluate":
            latest = json.loads((project / "runs/latest/metrics.json").read_text())
            assert json.loads(result.stdout)["accuracy"] == pytest.approx(latest["test_accuracy"]), result.stdout
    with (project / "predictions.csv").open() as handle:
        predictions = list(csv.DictReader(handle))
    assert predictions and predictions[0]["label"] in classes, predictions[:3]
    # The whole embedded dataset, through `python -m`: one row per example, each a class and a confidence.
    output = "runs/embedded-predictions.csv"
    args = ["predict", "--checkpoint", "runs/latest/checkpoint.pt", "--input", data, "--output", output]
    run(python, "-m", "my_ml_project", *args, cwd=project)
    with (project / output).open() as handle:
        predictions = list(csv.DictReader(handle))
    assert len(predictions) == rows, f"{len(predictions)} predictions for {rows} examples"
    for row in predictions:
        assert row["label"] in classes and 0 < float(row["confidence"]) <= 1, row


@pytest.mark.parametrize("task", TASKS)
def test_scale_out_commands_of_the_readme_work_on_the_cpu(
    task: str, task_project: Callable[[str], tuple[Path, Path]], tmp_path: Path
) -> None:
    """The CPU forms of the torchrun lines run; the GPU ones are left to the GPU machine."""
    project, python = task_project(task)
    commands = sh_blocks((project / "README.md").read_text(), "Scale out: several processes, several GPUs")
    cpu = [c for c in commands if "--device cuda" not in c]
    assert len(cpu) == 2 and len(commands) == 3, commands
    for number, command in enumerate(cpu):
        args = [*shlex.split(command), "--epochs", "2", "--output-dir", str(tmp_path / f"run-{number}")]
        executable = python.parent / args[0] if args[0] == "my-ml-project" else python
        prefix = [] if args[0] == "my-ml-project" else ["-m", "torch.distributed.run"]
        result = run(executable, *prefix, *args[1:], cwd=project, timeout=300)
        assert "test accuracy" in result.stdout, f"{command}: {result.stdout}"


def wait_until_serving(server: subprocess.Popen, log: Path, timeout: float = 120) -> str:
    """The URL that ``serve`` prints, once its /health answers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"serve exited with status {server.returncode}:\n{log.read_text()}")
        found = re.search(r"^serving .* on (http://\S+)$", log.read_text(), re.MULTILINE)
        if found:
            try:
                with urllib.request.urlopen(f"{found.group(1)}/health", timeout=5) as response:
                    if response.status == 200:
                        return found.group(1)
            except OSError:  # not listening yet
                pass
        time.sleep(0.2)
    pytest.fail(f"serve did not answer /health within {timeout} s:\n{log.read_text()}")


@pytest.mark.parametrize("task", TASKS)
def test_serve_and_curl_commands_of_the_readme_work(
    task: str, task_project: Callable[[str], tuple[Path, Path]], tmp_path: Path
) -> None:
    """The serve line as written but on a free port, then the curl line against it."""
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    project, python = task_project(task)
    serve_line, curl_line = sh_blocks((project / "README.md").read_text(), "Serve over HTTP")
    args = shlex.split(serve_line)
    assert args[:2] == ["my-ml-project", "serve"], serve_line
    if not (project / "runs/latest/checkpoint.pt").is_file():  # the train command of the README ran elsewhere
        run(python.parent / "my-ml-project", "train", "--epochs", "1", cwd=project)
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        command = [python.parent / args[0], *args[1:], "--port", "0"]
        server = subprocess.Popen(command, cwd=project, env=ENV, stdout=out, stderr=subprocess.STDOUT)
    try:
        url = wait_until_serving(server, log)
        assert "localhost:8000" in curl_line, curl_line
        answer = run("bash", "-c", curl_line.replace("localhost:8000", url.removeprefix("http://")), cwd=project)
    finally:
        server.terminate()
        server.wait(timeout=60)
    prediction = json.loads(answer.stdout)
    assert prediction["label"] in prediction["probabilities"], prediction
    assert sum(prediction["probabilities"].values()) == pytest.approx(1, abs=1e-5), prediction
    # uvicorn shuts down gracefully, then lets SIGTERM end the process as it would by default.
    assert server.returncode in (0, -signal.SIGTERM), log.read_text()
    assert "Finished server process" in log.read_text(), log.read_text()


@pytest.mark.parametrize("task", TASKS)
def test_export_commands_of_the_readme_work(task: str, task_project: Callable[[str], tuple[Path, Path]]) -> None:
    """`export` as written, then `predict --backend onnx` as written: the same rows, labels and
    probabilities (within the export's tolerance) as the same `predict` run by torch."""
    project, python = task_project(task)
    export_line, predict_line = sh_blocks((project / "README.md").read_text(), "Export")
    if not (project / "runs/latest/checkpoint.pt").is_file():  # the train command of the README ran elsewhere
        run(python.parent / "my-ml-project", "train", "--epochs", "1", cwd=project)
    shutil.rmtree(project / "runs/latest/export", ignore_errors=True)
    exported = run(python.parent / "my-ml-project", *shlex.split(export_line)[1:], cwd=project)
    assert "model.pt2 and model.onnx written to runs/latest/export" in exported.stdout, exported.stdout
    args = shlex.split(predict_line)
    assert args[args.index("--backend") + 1] == "onnx", predict_line
    run(python.parent / "my-ml-project", *args[1:], cwd=project)
    output = args[args.index("--output") + 1]
    without = [arg for arg in args[1:] if arg not in ("--backend", "onnx")]
    without[without.index(output)] = "torch-predictions.csv"
    run(python.parent / "my-ml-project", *without, "--overwrite", cwd=project)
    with (project / output).open() as onnx_file, (project / "torch-predictions.csv").open() as torch_file:
        by_onnx, by_torch = list(csv.DictReader(onnx_file)), list(csv.DictReader(torch_file))
    assert len(by_onnx) == len(by_torch) > 0, f"{len(by_onnx)} rows by ONNX Runtime, {len(by_torch)} by torch"
    for onnx_row, torch_row in zip(by_onnx, by_torch, strict=True):
        assert onnx_row.keys() == torch_row.keys(), f"{list(onnx_row)}, not {list(torch_row)}"
        probabilities = [name for name in torch_row if name.startswith("probability_")]
        largest = max(abs(float(onnx_row[name]) - float(torch_row[name])) for name in probabilities)
        assert largest <= 1e-4, f"ONNX Runtime's probabilities differ by {largest:.2g}: {onnx_row}, {torch_row}"
        if onnx_row["label"] != torch_row["label"]:  # right only where the model is torn between two classes
            second, first = sorted(float(torch_row[name]) for name in probabilities)[-2:]
            assert first - second <= 2e-4, f"another label by ONNX Runtime: {onnx_row}, {torch_row}"


# The README's download, offline: a tiny model saved the same way, by the project's own test helper.
SAVE_TINY = {
    "text": """
import sys
from test_pretrained import save_tiny_encoder
from my_ml_project.data import load_examples
texts = [str(text) for text in load_examples().read(range(2000))]
save_tiny_encoder(sys.argv[1], texts)
""",
    "image": """
import sys
from test_pretrained import save_tiny_vision
save_tiny_vision(sys.argv[1])
""",
}
# Per task: the folder the README saves the pretrained model to, and the golden inputs `predict` reads.
FINE_TUNED = {"text": ("bert", "tests/regression/golden.csv"), "image": ("vit", "tests/regression/golden")}


@pytest.mark.parametrize("task", sorted(SAVE_TINY))
def test_fine_tune_commands_of_the_readme_work(task: str, task_project: Callable[[str], tuple[Path, Path]]) -> None:
    """The fine-tuning commands as written, the download replaced by a tiny model saved with
    save_pretrained where the README saves one (no network here); `predict` then runs with the
    folder gone and the hub unreachable: the checkpoint holds the model's preprocessing, config and weights."""
    project, python = task_project(task)
    name, golden = FINE_TUNED[task]
    save_line, *commands = sh_blocks((project / "README.md").read_text(), "Fine-tune a pretrained model")
    assert f".save_pretrained('{name}')" in save_line, save_line
    offline = {"HF_HUB_OFFLINE": "1", "HF_HOME": str(project / "empty-hf-cache")}
    folder = project / name
    tests = str(project / "tests" / "integration")
    run(python, "-c", SAVE_TINY[task], folder, cwd=project, env={**offline, "PYTHONPATH": tests})
    for command in commands:
        args = shlex.split(command)
        assert args[0] == "my-ml-project", f"not a command of the project: {command}"
        if args[1] == "predict":
            shutil.rmtree(folder)
        result = run(python.parent / args[0], *args[1:], cwd=project, env=offline)
        if args[1] == "train":
            assert "test accuracy" in result.stdout, f"{command}: {result.stdout}"
            config = json.loads((project / "runs/latest/config.json").read_text())
            assert config["pretrained"] == name, f"{command}: the run did not start from {name}: {config}"
    output = shlex.split(commands[-1])[-1]
    with (project / output).open() as file:
        rows = list(csv.DictReader(file))
    if task == "text":
        with (project / golden).open() as file:
            expected = len(list(csv.DictReader(file)))
    else:
        expected = len([path for path in (project / golden).rglob("*.png")])
    assert len(rows) == expected, f"{len(rows)} predictions for {expected} golden inputs"
    assert {row["label"] for row in rows} <= EMBEDDED[task][2], {row["label"] for row in rows}


def test_the_tracking_command_of_the_readme_shows_the_runs_train_logged(
    task_project: Callable[[str], tuple[Path, Path]], tmp_path: Path
) -> None:
    """A `train` with the track extra installed, then `mlflow ui` as written (on a free port): its
    REST API finds that run, named like its folder, with its test accuracy."""
    project, python = task_project("tabular")
    (ui_line,) = sh_blocks((project / "README.md").read_text(), "Track runs")
    run(python.parent / "my-ml-project", "train", "--epochs", "2", "--name", "tracked-by-readme", cwd=project)
    metrics = json.loads((project / "runs/tracked-by-readme/metrics.json").read_text())
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    args = shlex.split(ui_line)
    assert args[0] == "mlflow" and "5000" in args, ui_line
    args[args.index("5000")] = str(port)
    log = tmp_path / "mlflow-ui.log"
    with log.open("w") as out:
        command = [python.parent / args[0], *args[1:]]
        # A session of its own: the server's worker processes end with it.
        server = subprocess.Popen(command, cwd=project, env=ENV, stdout=out, stderr=out, start_new_session=True)
    try:
        found = search_tracked_run(f"http://127.0.0.1:{port}", "tracked-by-readme", server, log)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
    test_accuracy = {metric["key"]: metric["value"] for metric in found["data"]["metrics"]}["test_accuracy"]
    assert test_accuracy == pytest.approx(metrics["test_accuracy"]), found["data"]["metrics"]


def search_tracked_run(url: str, name: str, server: subprocess.Popen, log: Path, timeout: float = 120) -> dict:
    """The run called ``name`` in the project's experiment, as the tracking server's REST API gives it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"mlflow ui exited with status {server.returncode}:\n{log.read_text()}")
        try:
            query = urllib.parse.urlencode({"experiment_name": "my-ml-project"})
            with urllib.request.urlopen(f"{url}/api/2.0/mlflow/experiments/get-by-name?{query}", timeout=5) as answer:
                experiment = json.loads(answer.read())["experiment"]["experiment_id"]
            body = json.dumps({"experiment_ids": [experiment], "filter": f"attributes.run_name = '{name}'"}).encode()
            request = urllib.request.Request(
                f"{url}/api/2.0/mlflow/runs/search", data=body, headers={"Content-Type": "application/json"}
            )
            with urllib.request.urlopen(request, timeout=5) as answer:
                runs = json.loads(answer.read()).get("runs", [])
            assert len(runs) == 1, f"{len(runs)} runs named {name} in the store: {runs}"
            return runs[0]
        except OSError:  # not listening yet
            time.sleep(0.5)
    pytest.fail(f"mlflow ui did not answer within {timeout} s:\n{log.read_text()}")


# Each torchrun line as torchrun reads it, and its training arguments as the project's CLI reads them.
PARSE_TORCHRUN = """
import json, sys
from torch.distributed.run import get_args_parser
from PACKAGE.cli import build_parser
parsed = []
for args in json.loads(sys.argv[1]):
    options = get_args_parser().parse_args(args)
    build_parser().parse_args(options.training_script_args)
    parsed.append(vars(options))
print(json.dumps(parsed))
"""


# Run in a project's environment: two torchrun launchers started with the same arguments (argv[1], JSON)
# from a folder (argv[2]), as two machines would be; prints each one's exit status, stdout and stderr.
LAUNCH_NODES = """
import json, sys
from my_ml_project.launch import start_torchrun
launchers = [start_torchrun(*json.loads(sys.argv[1]), cwd=sys.argv[2]) for _ in range(2)]
try:
    results = [launcher.finish(300) for launcher in launchers]
finally:
    for launcher in launchers:
        launcher.stop()
print(json.dumps([[result.returncode, result.stdout, result.stderr[-3000:]] for result in results]))
"""


def torchrun_lines(readme: str) -> list[list[str]]:
    """The arguments of every torchrun line of "Train across machines", the SLURM script's included."""
    lines = sh_blocks(readme, "Train across machines") + sh_blocks(readme, "Train across machines", "bash")
    commands = [shlex.split(line) for line in lines if "torchrun " in line]
    return [command[command.index("torchrun") + 1 :] for command in commands]


@pytest.mark.parametrize("task", TASKS)
def test_multi_node_commands_of_the_readme_parse(task: str, task_project: Callable[[str], tuple[Path, Path]]) -> None:
    """The c10d form, the static form (node ranks 0 and 1) and the SLURM script's srun line."""
    project, python = task_project(task)
    commands = torchrun_lines((project / "README.md").read_text())
    assert len(commands) == 4, commands
    script = PARSE_TORCHRUN.replace("PACKAGE", "my_ml_project")
    parsed = json.loads(run(python, "-c", script, json.dumps(commands), cwd=project).stdout)
    for options in parsed:
        assert options["module"] and options["training_script"] == "my_ml_project", options
        assert options["nnodes"] != "1:1", f"a single-node command in the multi-node section: {options}"
    dynamic = [o for o in parsed if o["rdzv_backend"] == "c10d"]
    static = sorted((o["node_rank"], o["master_addr"], o["master_port"]) for o in parsed if o["rdzv_backend"] != "c10d")
    assert len(dynamic) == 2 and all(o["rdzv_endpoint"] and o["rdzv_id"] for o in dynamic), dynamic
    assert [rank for rank, *_ in static] == [0, 1] and len({tuple(place) for _, *place in static}) == 1, static


def test_multi_node_command_of_the_readme_trains_as_two_nodes_on_one_machine(
    task_project: Callable[[str], tuple[Path, Path]], tmp_path: Path
) -> None:
    """The c10d line, run twice here: endpoint on localhost, one CPU process per node, two epochs.

    The tabular project's; the image project's distributed tier runs in test_matrix."""
    project, python = task_project("tabular")
    lines = torchrun_lines((project / "README.md").read_text())
    (command,) = (c for c in lines if "--rdzv-backend=c10d" in c and not any("$" in arg for arg in c))
    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        port = probe.getsockname()[1]
    here = {"--nproc-per-node=4": "--nproc-per-node=1", "cuda": "cpu", "/shared/runs/run-1": str(tmp_path / "run")}
    args = [here.get(a, re.sub(r"--rdzv-endpoint=.*", f"--rdzv-endpoint=localhost:{port}", a)) for a in command]
    args += ["--epochs", "2"]
    # The project's own launcher (launch.start_torchrun), started once per node: no launcher outlives
    # the test, and torchrun's files stay in the test's folder.
    launched = run(python, "-c", LAUNCH_NODES, json.dumps(args), tmp_path, cwd=project)
    results = json.loads(launched.stdout.splitlines()[-1])
    codes = [code for code, _, _ in results]
    assert codes == [0, 0], f"torchrun {shlex.join(args)} exited {codes}:\n" + "\n".join(e for _, _, e in results)
    reports = [out for _, out, _ in results]
    assert sum("test accuracy" in text for text in reports) == 1, reports
    assert (tmp_path / "run" / "checkpoint.pt").is_file()
