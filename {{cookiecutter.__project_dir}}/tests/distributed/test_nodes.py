"""Training across machines: torchrun launchers that meet through a c10d rendezvous.

Two launchers on this machine stand for two machines (``--nnodes=2 --nproc-per-node=1``),
started with the options the README's multi-node command gives on a cluster.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from torch import distributed

import {{ cookiecutter.package_name }} as package
from {{ cookiecutter.package_name }}.launch import free_port, node_options, run_torchrun_nodes, start_torchrun

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not distributed.is_available(), reason="this torch build has no torch.distributed"),
]

# How long a node waits for the others before it gives up, in the failure tests below (torchrun's default: 600 s).
JOIN_TIMEOUT = 5
# How long a failure may take to stop the node left alone.
GIVE_UP_WITHIN = 45


@pytest.fixture(scope="module")
def two_nodes(tmp_path_factory: pytest.TempPathFactory, train_options: list[str]) -> tuple[Path, list[str]]:
    """The output folder of the single run's training on two nodes of one process each, and each node's output."""
    root = tmp_path_factory.mktemp("nodes")
    output = f"--output-dir={root / 'out'}"
    results = run_torchrun_nodes(
        "-m", package.__name__, "train", output, *train_options, nodes=2, processes=1, cwd=root, timeout=180
    )
    for node, result in enumerate(results):
        assert result.returncode == 0, f"node {node} failed:\n{result.stderr[-4000:]}"
    return root / "out", [result.stdout for result in results]


def test_two_nodes_learn_the_same_weights_as_one_process(
    two_nodes: tuple[Path, list[str]], assert_learned_what_one_process_learns: Callable[[Path, str], None]
) -> None:
    output, _ = two_nodes
    metrics = json.loads((output / "metrics.json").read_text())
    assert metrics["processes"] == 2, metrics
    assert_learned_what_one_process_learns(output, "training on two nodes")


def test_only_the_node_of_rank_0_reports(two_nodes: tuple[Path, list[str]]) -> None:
    _, printed = two_nodes
    reports = [text.count("test accuracy") for text in printed]
    assert sorted(reports) == [0, 1], f"reports per node: {reports}\n{printed}"


def test_a_node_that_never_joins_stops_the_other_with_a_rendezvous_timeout(tmp_path: Path) -> None:
    options = node_options(2, 1, f"localhost:{free_port()}", join_timeout=JOIN_TIMEOUT)
    train = ["-m", package.__name__, "train", f"--output-dir={tmp_path / 'out'}", "--device=cpu"]
    started = time.monotonic()
    result = start_torchrun(*options, *train, cwd=tmp_path).finish(timeout=GIVE_UP_WITHIN)
    waited = time.monotonic() - started
    assert result.returncode != 0, "a node reported success although the other never came"
    assert "RendezvousTimeoutError" in result.stderr, result.stderr[-3000:]
    assert waited >= JOIN_TIMEOUT, f"the node gave up after {waited:.1f} s, before its join timeout"
    assert not (tmp_path / "out").exists(), "a node that trained nothing wrote an output folder"


def test_a_node_that_stops_mid_run_stops_the_other_with_a_clear_error(tmp_path: Path) -> None:
    """As when a machine of the job is shut down or preempted: its torchrun stops its workers."""
    host, port = "localhost", free_port()
    options = node_options(2, 1, f"{host}:{port}")
    output = tmp_path / "out"
    train = ["-m", package.__name__, "train", f"--output-dir={output}", "--device=cpu", "--epochs=1000"]
    first = start_torchrun(*options, *train, cwd=tmp_path)  # the first to listen hosts the rendezvous
    second = None
    try:
        wait_for(lambda: listening(host, port), "the first node to listen on its rendezvous port")
        second = start_torchrun(*options, *train, cwd=tmp_path)
        wait_for(lambda: (output / "checkpoint.pt").exists(), "the two nodes to train an epoch together")
        second.stop()
        result = first.finish(timeout=GIVE_UP_WITHIN)
    finally:
        first.stop()
        if second is not None:
            second.stop()
    assert result.returncode != 0, "the node left alone reported success"
    assert "ChildFailedError" in result.stderr, result.stderr[-3000:]
    assert "by peer" in result.stderr, f"no word of the lost peer:\n{result.stderr[-3000:]}"


def listening(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=1).close()
    except OSError:
        return False
    return True


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"waited {timeout} s for {what}"
        time.sleep(0.2)
