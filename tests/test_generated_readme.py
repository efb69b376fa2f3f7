"""The commands a generated project's README gives work as written, for every task."""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import TASKS, run

pytestmark = pytest.mark.slow


def sh_blocks(readme: str, heading: str) -> list[str]:
    """The command lines of the ```sh blocks in the section under ``heading``, without comments."""
    section = readme.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    lines = []
    for block in re.findall(r"```sh\n(.*?)\n```", section, re.DOTALL):
        for line in block.splitlines():
            command = line.split(" #", 1)[0].strip()
            if command and not command.startswith("#"):
                lines.append(command)
    return lines


@pytest.mark.parametrize("task", TASKS)
def test_train_evaluate_predict_commands_of_the_readme_work(
    task: str, task_project: Callable[[str], tuple[Path, Path]]
) -> None:
    project, python = task_project(task)
    commands = sh_blocks((project / "README.md").read_text(), "Train, evaluate, predict")
    assert len(commands) >= 5, commands
    for command in commands:
        args = shlex.split(command)
        assert args[0] == "my-ml-project", f"not a command of the project: {command}"
        result = run(python.parent / args[0], *args[1:], cwd=project)
        if args[1] == "train":
            assert "test accuracy" in result.stdout, f"{command}: {result.stdout}"
    predictions = (project / "predictions.csv").read_text().splitlines()
    assert "label,confidence" in predictions[0] and len(predictions) > 1, predictions[:3]


@pytest.mark.parametrize("task", TASKS)
def test_scale_out_commands_of_the_readme_work_on_the_cpu(
    task: str, task_project: Callable[[str], tuple[Path, Path]], tmp_path: Path
) -> None:
    """The CPU forms of the torchrun lines run; the GPU ones are left to the GPU machine."""
    project, python = task_project(task)
    commands = sh_blocks((project / "README.md").read_text(), "Scale out: several processes, several GPUs")
    cpu = [c for c in commands if "--device cuda" not in c]
    assert len(cpu) == 2 and len(commands) == 3, commands
    for command in cpu:
        args = [*shlex.split(command), "--epochs", "2", "--output-dir", str(tmp_path / "run")]
        executable = python.parent / args[0] if args[0] == "my-ml-project" else python
        prefix = [] if args[0] == "my-ml-project" else ["-m", "torch.distributed.run"]
        result = run(executable, *prefix, *args[1:], cwd=project, timeout=300)
        assert "test accuracy" in result.stdout, f"{command}: {result.stdout}"
