"""Write ``golden.csv``: labelled rows the reference model of ``test_golden.py`` never trained on.

Run it once, review the rows, commit them; run it again only when the data or the schema
changes (then regenerate the baseline too: ``pytest tests/regression --force-regen``).

    python tests/regression/make_golden.py

The rows come from the *test* split of the reference run (``REFERENCE`` in test_golden.py). For each class it takes
``ROWS_PER_CLASS`` rows, spread evenly over the values of the first categorical feature
(for the penguins: every island a species lives on), in table order, and copies them
verbatim from the source file.
"""

from __future__ import annotations

from itertools import zip_longest
from pathlib import Path

from test_golden import REFERENCE  # run as a script, this folder is on sys.path

from {{ cookiecutter.package_name }}.data import embedded_dataset_path, load_table, stratified_split
from {{ cookiecutter.package_name }}.data.schema import CATEGORICAL_FEATURES, TARGET

GOLDEN = Path(__file__).with_name("golden.csv")
ROWS_PER_CLASS = 12


def golden_positions() -> list[int]:
    table = load_table(REFERENCE.data)
    split = stratified_split(table[TARGET], REFERENCE.val_fraction, REFERENCE.test_fraction, REFERENCE.seed)
    held_out = table.iloc[split.test]
    positions = []
    for _, rows in held_out.groupby(TARGET, sort=True):
        groups = [list(group.index) for _, group in rows.groupby(CATEGORICAL_FEATURES[0], sort=True)]
        spread = [i for batch in zip_longest(*groups) for i in batch if i is not None]
        positions += sorted(spread[:ROWS_PER_CLASS])
    return positions


def main() -> None:
    source = Path(REFERENCE.data) if REFERENCE.data else embedded_dataset_path()
    header, *lines = source.read_text().splitlines()
    GOLDEN.write_text("\n".join([header, *(lines[i] for i in golden_positions())]) + "\n")
    print(f"{GOLDEN}: {len(golden_positions())} rows")


if __name__ == "__main__":
    main()
