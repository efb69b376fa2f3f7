"""Bring your own data: a correct swap done by the generated README's steps leaves every CPU tier green.

For each task the test makes other datasets of the same kind, follows the README's steps
literally (the files they name, the commands they give) and runs the unit, integration and
regression tiers of the swapped project. Tables: Parquet files of numeric columns with names
that need escaping in a pattern, classes labelled 1, 2 and 3, no categorical column; 178 rows
of 13 columns and 3 classes, and 569 rows of 30 columns whose scales run from 1e-3 to 1e3 and
2 overlapping classes. Images: a folder of three shapes in mixed sizes and colour modes,
resized to an input size set in `INPUT_SIZE`. Texts: 900 in French on four topics with
accents, emoji, a sixth of them over two lines and a few longer than the tokenizer's limit,
in a CSV whose columns come in another order and that names no test split.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import bake, run, run_project_tests

pytestmark = pytest.mark.slow

PACKAGE = "my_ml_project"


def steps(readme: str, heading: str) -> tuple[str, list[str]]:
    """The text of the README section under ``heading`` and the commands of its ```sh blocks."""
    section = readme.split(f"### {heading}\n", 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]
    commands = [
        line.strip() for block in re.findall(r"```sh\n(.*?)\n\s*```", section, re.DOTALL) for line in block.splitlines()
    ]
    return " ".join(section.split()), [c for c in commands if c]


# Run in the project's environment (numpy, pandas); prints the classes and the numeric columns' ranges
# for the schema. "grades": 178 rows, 13 columns, 3 well-separated classes; "wide": 569 rows, 30
# columns whose scales run from thousandths to thousands, 2 overlapping classes (the default model
# overfits it within the default epochs).
MAKE_TABLE = """
import json, sys
import numpy as np
rng = np.random.default_rng(7)
kinds = {"grades": ([59, 71, 48], 13, 4.0, 0), "wide": ([357, 212], 30, 0.5, 3)}
counts, width, separation, decades = kinds[sys.argv[2]]
labels = np.repeat(np.arange(1, len(counts) + 1), counts)  # class labels that look like numbers
centres = rng.normal(0, separation, size=(len(counts), width))
scales = 10.0 ** rng.uniform(-decades, decades, size=width)
values = (centres[labels - 1] + rng.normal(0, 1, size=(len(labels), width)) + 50) * scales
names = [f"Measure {i} (a.u.)" if i % 2 else f"measure_{i:02d}+" for i in range(width)]  # names regexes trip on
lines = ["grade," + ",".join(names)]
for row, (label, numbers) in enumerate(zip(labels, values)):
    cells = [f"{v:.6g}" for v in numbers]
    if row % 40 == 3:
        cells[5] = "NA"  # a few missing values in one column
    label = str(label)
    lines.append(",".join([label, *cells]))
open(sys.argv[1], "w").write("\\n".join(lines) + "\\n")
import pandas as pd  # the same table as Parquet, its labels as integers
frame = pd.read_csv(sys.argv[1], na_values=["NA"], keep_default_na=False)
frame.to_parquet(sys.argv[1].replace(".csv", ".parquet"), index=False)
low, high = values.min(axis=0), values.max(axis=0)
ranges = {n: [float(low[i] - (high[i] - low[i])), float(high[i] + (high[i] - low[i]))] for i, n in enumerate(names)}
print(json.dumps({"classes": sorted(set(map(str, labels))), "ranges": ranges}))
"""
MAKE_IMAGES = """
import sys
from pathlib import Path
import numpy as np
from PIL import Image
rng = np.random.default_rng(7)
for shape in ("vertical", "horizontal", "square"):
    folder = Path(sys.argv[1], shape)
    folder.mkdir(parents=True)
    for number in range(60):
        image = rng.integers(0, 60, size=(12, 12, 3))
        colour, at = rng.integers(150, 256, size=3), rng.integers(2, 8)
        if shape == "vertical":
            image[:, at : at + 3] = colour
        elif shape == "horizontal":
            image[at : at + 3, :] = colour
        else:
            image[at - 1 : at + 4, at - 1 : at + 4] = colour
        picture = Image.fromarray(image.astype(np.uint8))
        size = [(12, 12), (24, 24), (16, 20), (9, 14)][number % 4]  # mixed sizes and modes
        picture = picture.resize(size, Image.Resampling.NEAREST).convert(["RGB", "L", "RGBA"][number % 3])
        picture.save(folder / f"{number:03d}.png")
"""

MAKE_TEXTS = """
import csv, sys
import numpy as np
rng = np.random.default_rng(7)
topics = {
    "sport": "match équipe but arbitre stade joueur victoire défaite ballon entraîneur saison coupe".split(),
    "météo": "pluie soleil nuage orage neige vent température brouillard averse chaleur gel prévisions".split(),
    "cuisine": "recette farine beurre four sauce épices gâteau soupe fromage poêle dessert légumes".split(),
    "musique": "concert guitare chanson piano orchestre album rythme mélodie chanteur scène festival note".split(),
}
filler = (
    "le la les un une des et mais donc car puis hier demain aujourd'hui très trop peu beaucoup ville "
    "matin soir semaine ami voisin dit pense voit encore déjà toujours jamais 😀 ☀️ « » — naïve cœur Zürich"
).split()
with open(sys.argv[1], "w", newline="", encoding="utf-8") as file:
    writer = csv.writer(file)
    writer.writerow(["label", "text"])  # the other order than the embedded file's
    for row in range(900):
        label = list(topics)[row % 4]
        words = 200 if row % 300 == 150 else int(rng.integers(4, 15))  # 3 texts beyond MAX_LENGTH tokens
        picks = [rng.choice(topics[label]) if rng.random() < 0.4 else rng.choice(filler) for _ in range(words)]
        if row % 6 == 1:  # a text of several lines, a line break inside a quoted value
            picks[len(picks) // 2] += ".\\n" if row % 12 == 1 else ".\\r\\n"
        writer.writerow([label, " ".join(picks).capitalize() + ("?" if row % 5 == 0 else ".")])
"""


def schema_source(classes: list[str], ranges: dict[str, list[float]]) -> str:
    """COLUMNS and TARGET for the made table, as a user would write them in schema.py."""
    columns = [f'    "grade": ColumnSpec("categorical", categories={tuple(classes)!r}),']
    for index, (name, (low, high)) in enumerate(ranges.items()):
        missing = ", max_missing_fraction=0.05" if index == 5 else ""
        columns.append(f'    "{name}": ColumnSpec("numeric", min_value={low:.6g}, max_value={high:.6g}{missing}),')
    return "COLUMNS: dict[str, ColumnSpec] = {\n" + "\n".join(columns) + '\n}\n\nTARGET = "grade"\n'


def set_constant(path: Path, name: str, value: str) -> None:
    text = path.read_text()
    new, count = re.subn(rf"^{name} = .*$", f"{name} = {value}", text, count=1, flags=re.MULTILINE)
    assert count == 1, f"{path.name} has no `{name} = ...` line to set"
    path.write_text(new)


@pytest.mark.parametrize(
    ("task", "dataset"), [("tabular", "grades"), ("tabular", "wide"), ("image", "shapes"), ("text", "sujets")]
)
def test_a_swap_by_the_readme_steps_keeps_every_cpu_tier_green(
    task: str, dataset: str, tmp_path: Path, task_project: Callable[[str], tuple[Path, Path]]
) -> None:
    python = task_project(task)[1]  # an environment with the task's dependencies
    project = bake(tmp_path, task=task)
    data = project / "src" / PACKAGE / "data"
    readme = (project / "README.md").read_text()
    if task == "tabular":
        section, commands = steps(readme, "Use your own table")
        assert "`DATASET` in `data/load.py`" in section and "`COLUMNS` in `data/schema.py`" in section, section
        assert "Parquet file (`.parquet`)" in section, section
        made = json.loads(run(python, "-c", MAKE_TABLE, data / "grades.csv", dataset, cwd=tmp_path).stdout)
        (data / "grades.csv").unlink()  # the Parquet copy is the data
        set_constant(data / "load.py", "DATASET", '"grades.parquet"')
        schema = data / "schema.py"
        text = schema.read_text()
        start, end = text.index("COLUMNS: dict[str, ColumnSpec] = {"), text.index("NUMERIC_FEATURES = ")
        schema.write_text(text[:start] + schema_source(made["classes"], made["ranges"]) + text[end:])
        assert "Delete `penguins.csv`" in section, section
        (data / "penguins.csv").unlink()
    elif task == "image":
        section, commands = steps(readme, "Use your own images")
        assert "set `DATASET` in `data/load.py`" in section and "`INPUT_SIZE` in `data/preprocess.py`" in section
        run(python, "-c", MAKE_IMAGES, data / "shapes", cwd=tmp_path)
        set_constant(data / "load.py", "DATASET", '"shapes"')
        set_constant(data / "preprocess.py", "INPUT_SIZE", '(12, "pixels per side images are resized to")')
        assert "Delete `digits.csv.gz`" in section, section
        (data / "digits.csv.gz").unlink()
    else:
        section, commands = steps(readme, "Use your own texts")
        assert "set `DATASET` in `data/load.py`" in section, section
        run(python, "-c", MAKE_TEXTS, data / "sujets.csv", cwd=tmp_path)
        set_constant(data / "load.py", "DATASET", '"sujets.csv"')
        assert "Delete `trec.csv.gz`" in section, section
        (data / "trec.csv.gz").unlink()
    assert commands == ["python tests/regression/make_golden.py", "pytest tests/regression --force-regen"], commands
    env = {"PYTHONPATH": str(project / "src")}
    run(python, *shlex.split(commands[0])[1:], cwd=project, env=env)
    regenerated = run(
        python, "-m", *shlex.split(commands[1]), "-p", "no:cacheprovider", cwd=project, env=env, check=False
    )
    assert regenerated.returncode == 1 and "1 failed" in regenerated.stdout, regenerated.stdout[-2000:]
    tiers = run_project_tests(python, project, "tests/unit", "tests/integration", "tests/regression", check=False)
    summary = tiers.stdout.strip().splitlines()[-1]
    assert tiers.returncode == 0, f"after the swap the tiers fail:\n{tiers.stdout[-6000:]}"
    assert " passed" in summary and "failed" not in summary, summary
