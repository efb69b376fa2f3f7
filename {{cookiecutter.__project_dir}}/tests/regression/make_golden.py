"""Write the golden set: labelled examples the reference model of ``test_golden.py`` never trained on.

Run it once, review the examples, commit them; run it again only when the data changes (then
regenerate the baseline too: ``pytest tests/regression --force-regen``).

    python tests/regression/make_golden.py

For every class it takes ``ROWS_PER_CLASS`` examples of the reference run's *test* split,
spread evenly over that class's test examples in dataset order, and writes them with the
task's ``write_examples`` so that ``load_examples`` reads them back.
"""

from __future__ import annotations

import shutil

import numpy as np
from test_golden import GOLDEN, REFERENCE, ROWS_PER_CLASS  # run as a script, this folder is on sys.path

from {{ cookiecutter.package_name }}.data import load_examples, write_examples
from {{ cookiecutter.package_name }}.task import Examples
from {{ cookiecutter.package_name }}.training import split_examples


def golden_examples() -> Examples:
    examples = load_examples(REFERENCE.data)
    split = split_examples(examples, REFERENCE.val_fraction, REFERENCE.test_fraction, REFERENCE.seed)
    held_out = examples.subset(split.test)
    rows: list[int] = []
    for label in sorted(set(held_out.labels)):
        positions = np.flatnonzero(held_out.labels == label)
        picks = np.linspace(0, len(positions) - 1, min(ROWS_PER_CLASS, len(positions))).round().astype(int)
        rows += positions[picks].tolist()
    return held_out.subset(sorted(rows))


def main() -> None:
    golden = golden_examples()
    if GOLDEN.is_dir():  # a folder of images
        shutil.rmtree(GOLDEN)
    else:  # a file (a table, texts)
        GOLDEN.unlink(missing_ok=True)
    write_examples(golden, GOLDEN)
    print(f"{GOLDEN}: {len(golden)} examples")


if __name__ == "__main__":
    main()
