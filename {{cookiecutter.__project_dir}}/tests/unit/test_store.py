"""The stores of data larger than memory and the statistics of a streamed pass (``store.py``).

Each store gives back exactly what was written, in the order asked for, survives the pickling
a spawned DataLoader worker receives it through, and leaves no file behind.
"""

from __future__ import annotations

import gc
import gzip
import pickle
import re
import tempfile

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from {{ cookiecutter.package_name }} import store
from {{ cookiecutter.package_name }}.store import ArrowWriter, DiskArray, RunningMoments, sample_rows


@pytest.fixture(autouse=True)
def scratch(tmp_path, monkeypatch):
    """The stores' temporary folder: a test's own, to see what is left in it."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def left_in(folder) -> list[str]:
    gc.collect()
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(store.PREFIX))


def numbers(table: pa.Table, rows: np.ndarray) -> np.ndarray:
    return np.stack([table.column("n").to_numpy(), rows])


def test_a_disk_array_reads_back_any_rows_in_any_order(scratch):
    values = np.random.default_rng(0).normal(size=(1000, 3)).astype(np.float32)
    array = DiskArray.write([values[:300], values[300:]], np.float32)
    rows = np.random.default_rng(1).permutation(1000)[:77]
    assert array.shape == (1000, 3), array.shape
    assert np.array_equal(array[rows], values[rows]), "rows read in a random order differ from those written"
    assert np.array_equal(array[10:20], values[10:20]), "a slice differs"
    assert np.array_equal(array[999], values[999]), "the last row differs"
    with pytest.raises(IndexError, match="out of range"):
        array[np.array([0, 1000])]


def test_rows_of_an_arrow_file_come_back_in_the_order_asked_from_any_record_batch(monkeypatch):
    monkeypatch.setattr(store, "ARROW_BATCH", 7)  # many record batches
    with ArrowWriter() as writer:
        for start in range(0, 100, 30):
            writer.write(pa.table({"n": np.arange(start, min(start + 30, 100))}))
        items = writer.finish(numbers)
    rows = np.random.default_rng(0).permutation(100)[:40]
    read, positions = items.read(rows)
    assert read.tolist() == rows.tolist(), "rows came back in another order, or other rows came back"
    assert positions.tolist() == rows.tolist(), "the positions handed to to_inputs are not the rows asked for"
    assert len(items) == 100


def test_stores_survive_the_pickling_a_spawned_worker_receives_them_through():
    array = DiskArray.write([np.arange(12).reshape(4, 3)], np.int64)
    with ArrowWriter() as writer:
        writer.write(pa.table({"n": np.arange(5)}))
        items = writer.finish(numbers)
    again = pickle.loads(pickle.dumps(array))
    assert np.array_equal(again[[3, 0]], array[[3, 0]]), "a DiskArray reopened elsewhere reads other rows"
    assert pickle.loads(pickle.dumps(items)).read(np.array([4, 1]))[0].tolist() == [4, 1]


def test_a_store_s_file_goes_when_the_store_does(scratch):
    array = DiskArray.write([np.zeros((3, 2))], np.float64)
    with ArrowWriter() as writer:
        writer.write(pa.table({"n": [1, 2]}))
        items = writer.finish(numbers)
    assert len(left_in(scratch)) == 2, left_in(scratch)
    del array, items
    assert left_in(scratch) == [], "a store's file outlived the store"


def test_a_write_that_fails_leaves_no_file(scratch):
    def chunks():
        yield np.zeros((2, 3))
        yield np.zeros((2, 4))  # rows of another width

    def broken_read() -> None:
        with ArrowWriter() as writer:
            writer.write(pa.table({"n": [1]}))
            raise RuntimeError("reading broke")

    with pytest.raises(ValueError, match="rows of shape"):
        DiskArray.write(chunks(), np.float64)
    with pytest.raises(RuntimeError, match="reading broke"):
        broken_read()
    assert left_in(scratch) == [], "a failed write left a file behind"


def test_running_moments_over_batches_equal_those_of_the_whole():
    values = np.random.default_rng(0).normal(5, 3, size=(1000, 4)) * [1, 10, 1e-3, 1e6]
    moments = RunningMoments(4)
    for start in range(0, 1000, 64):
        moments.add(values[start : start + 64])
    assert moments.count == 1000
    np.testing.assert_allclose(moments.mean, values.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(moments.std, values.std(axis=0), rtol=1e-10)


def test_a_sample_of_rows_is_seeded_sorted_distinct_and_everything_when_there_are_fewer():
    sample = sample_rows(10_000, 100, seed=3)
    assert len(sample) == len(set(sample.tolist())) == 100, "a row drawn twice"
    assert np.all(np.diff(sample) > 0), "the sample is not in file order"
    assert np.array_equal(sample, sample_rows(10_000, 100, seed=3)), "the same seed drew another sample"
    assert not np.array_equal(sample, sample_rows(10_000, 100, seed=4)), "another seed drew the same sample"
    assert np.array_equal(sample_rows(50, 100), np.arange(50)), "fewer rows than the sample: not every row"


def test_a_blank_line_of_a_csv_is_a_row_of_empty_values_not_skipped(tmp_path):
    # Skipped, it would renumber every later row: predictions would sit beside the wrong inputs.
    path = tmp_path / "table.csv"
    path.write_text("a,b\n1,x\n\n   \n4,y\n")
    (table,) = store.table_batches(path)
    assert table.index.tolist() == [1, 2, 3, 4], f"rows {table.index.tolist()}: a blank line was skipped"
    assert table.loc[4].tolist() == ["4", "y"], f"the row after the blank lines reads {table.loc[4].tolist()}"
    assert (table.loc[2].fillna("") == "").all(), f"the blank line reads {table.loc[2].tolist()}"


def test_a_row_is_named_by_the_line_it_starts_on_counting_every_line_of_a_quoted_value(tmp_path):
    # Row 1 spans lines 2-4, row 2 is the blank line 5, row 3 starts on line 6 and spans a \r\n.
    path = tmp_path / "table.csv"
    path.write_bytes(b'text,label\n"one\ntwo\nthree",a\n\n"four\r\nfive",b\nsix,c\n')
    (table,) = store.table_batches(path)
    assert table.index.tolist() == [1, 2, 3, 4], f"rows {table.index.tolist()}"
    assert store.row_lines(path, [1, 2, 3, 4]) == [2, 5, 6, 8], f"lines {store.row_lines(path, [1, 2, 3, 4])}"
    assert store.describe_rows(path, [4]) == "row 4 (line 8)"
    assert store.describe_rows(path, [1, 3], more=True) == "rows [1, 3] ... (lines [2, 6])"


def test_a_row_of_a_compressed_or_json_lines_file_is_named_by_its_line(tmp_path):
    packed = tmp_path / "table.csv.gz"
    packed.write_bytes(gzip.compress(b'a\n"x\ny"\nz\n'))
    assert store.row_lines(packed, [2]) == [4], "a gzipped CSV's lines were miscounted"
    records = tmp_path / "table.jsonl"
    records.write_text('{"a": 1}\n\n{"a": 2}\n')  # a blank line is no record
    assert [len(t) for t in store.table_batches(records)] == [2]
    assert store.describe_rows(records, [2]) == "row 2 (line 3)"
    parquet = tmp_path / "table.parquet"
    pd.DataFrame({"a": [1, 2]}).to_parquet(parquet)
    assert store.describe_rows(parquet, [2]) == "row 2", "a Parquet file has no lines to name"


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", ".jsonl"])
def test_a_byte_that_is_not_utf8_is_refused_naming_its_line(tmp_path, suffix):
    content = b'a\n"caf\xc3\xa9\nok"\ncaf\xe9\n' if suffix != ".jsonl" else b'{"a": "x"}\n{"a": "caf\xe9"}\n'
    path = tmp_path / f"table{suffix}"
    path.write_bytes(gzip.compress(content) if suffix.endswith(".gz") else content)
    line = 2 if suffix == ".jsonl" else 4
    message = rf"table{re.escape(suffix)}: not a readable .*\(line {line} is not UTF-8 text: invalid"
    with pytest.raises(ValueError, match=message):
        list(store.table_batches(path))


@pytest.mark.parametrize("cuts", [store.CUTS_AT_NUL, True], ids=["this-pandas", "a-pandas-that-cuts"])
def test_a_nul_byte_in_a_csv_value_is_read_whole_or_refused_naming_its_line_never_cut(tmp_path, monkeypatch, cuts):
    # pandas 2 ends a value at a NUL byte without a word ("ab\x00cd" reads "ab"); pandas 3 reads it whole.
    monkeypatch.setattr(store, "CUTS_AT_NUL", cuts)
    path = tmp_path / "texts.csv.gz"
    path.write_bytes(gzip.compress(b'text,n\nfine,1\n"two\nlines",2\nab\x00cd,3\n'))
    if cuts:
        with pytest.raises(ValueError, match=r"texts.csv.gz: not a readable CSV with pandas .*\(line 5 holds a NUL"):
            list(store.table_batches(path, text_columns=("text",)))
    else:
        (frame,) = store.table_batches(path, text_columns=("text",))
        assert frame["text"].tolist() == ["fine", "two\nlines", "ab\x00cd"], frame["text"].tolist()
