"""No false alarms: correct models of other kinds than a task's examples, registered as the generated
README says, pass every contract of the battery.

``tests/models/<task>.py`` holds published architectures that differ in kind from the examples:
for tables the MLP and ResNet (batch norm) of Gorishniy et al. (2021) and a small
FT-Transformer (attention over feature tokens); for images a tiny vision transformer; for texts a
bidirectional GRU over packed sequences (recurrence), a bag of embeddings with batch norm, torch's own
``nn.TransformerEncoder`` (its nested-tensor fast path) and a Hugging Face BERT built from a config
(token-type embeddings, its own attention masking).
A red contract on any of them is a test that would teach a user to ignore red.
"""

from __future__ import annotations

import ast
import re
import shutil
from pathlib import Path

import pytest
from conftest import TASKS, bake, install, run_project_tests
from test_own_data import PACKAGE, steps

pytestmark = pytest.mark.slow

MODELS = Path(__file__).with_name("models")
# The model-parametrised tests of the unit tier and of the integration tests that train a model
# (overfitting, capacity, a short run, optimiser steps); for texts the short run (minutes for a GRU
# on this machine) is left to the task's own models.
TRAINING = ("tests/integration/test_overfit.py", "tests/integration/test_training_steps.py")
PATHS = {
    "tabular": ("tests/unit", *TRAINING, "tests/integration/test_training.py"),
    "image": ("tests/unit", *TRAINING, "tests/integration/test_training.py"),
    "text": ("tests/unit", *TRAINING),
}


# What a models file imports beyond the project's dependencies, installed as its user would.
LIBRARIES = {"text": ("transformers",)}
# A model of the task's own, whose count of contracts every other model must match.
EXAMPLE = {"tabular": "mlp", "image": "cnn", "text": "cnn"}


def registered_names(source: Path) -> list[str]:
    """The names a models file registers (``@register_model("name", ...)``)."""
    names = []
    for node in ast.walk(ast.parse(source.read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "register_model":
            names.append(node.args[0].value)
    return names


@pytest.mark.parametrize("task", TASKS)
def test_correct_models_of_other_kinds_pass_every_contract(task: str, tmp_path: Path, task_project) -> None:
    _, python = task_project(task)
    project = bake(tmp_path, task=task)
    if task in LIBRARIES:
        install(python, *LIBRARIES[task], cwd=project)
    section, _ = steps((project / "README.md").read_text(), "Add a model")
    assert "@register_model" in section and "models/__init__.py" in section, section
    # The README's steps: the file in models/, its module imported in models/__init__.py.
    source = MODELS / f"{task}.py"
    models = project / "src" / PACKAGE / "models"
    shutil.copy(source, models / "theirs.py")
    init = models / "__init__.py"
    init.write_text(init.read_text().replace("from . import ", "from . import theirs  # noqa: F401\nfrom . import ", 1))
    names = registered_names(source)
    example = EXAMPLE[task]
    result = run_project_tests(
        python, project, *PATHS[task], "-vv", "-p", "no:randomly", "-k", " or ".join([example, *names])
    )
    passed = {name: len(re.findall(rf"\S+[\[-]{name}[\]-]\S* PASSED", result.stdout)) for name in [example, *names]}
    assert passed[example] >= 10, f"only {passed[example]} contracts ran on {example}:\n{result.stdout[-3000:]}"
    short = {name: count for name, count in passed.items() if count != passed[example]}
    assert not short, f"{passed[example]} contracts passed on {example}, other counts on {short}"
