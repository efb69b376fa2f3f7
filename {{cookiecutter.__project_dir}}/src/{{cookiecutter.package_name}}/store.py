"""Data larger than memory: read from a file in batches (``table_batches``), kept on disk,
written once in a streamed pass, read back by position; and the statistics such a pass can fit
(``RunningMoments``, ``sample_rows``).

Two kinds of store, each a file in the temporary folder (``TMPDIR``; point it at a disk, not
a RAM-backed ``/tmp``, for data larger than memory) that is deleted when the object that made
it is garbage collected (a process killed outright leaves its files, named ``PREFIX...``):

- ``ArrowItems``: raw rows of a table or of texts, as read from CSV, Parquet or JSON lines,
  in an Arrow file. Reading rows in file order (fitting, evaluating, predicting) loads one
  record batch after another; reading random rows works too, at some cost per row.
- ``DiskArray``: a numpy array (fixed-width rows: transformed features, pixel rows; or a
  flat run of token ids) that a training batch indexes at random, a positioned read per row.

Both read what they are asked for into memory and nothing else: the files are not mapped into
the process, so its resident memory stays that of a batch however large they grow, and the
operating system keeps in its page cache what fits of them. DataLoader worker processes
share the open files (on Linux they are forked); where they are spawned, each reopens them.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import lzma
import os
import tempfile
import weakref
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pyarrow import ipc

# The prefix of every temporary file a store writes: easy to find, and to clean after a crash.
PREFIX = f"{__package__}-"
# Rows read from a file at a time: what reading a table holds in memory.
BATCH_ROWS = 65_536
# Rows per record batch of an Arrow file: what a read of a few rows loads.
ARROW_BATCH = 4096
# The formats ``table_batches`` reads, by the end of the file's name; anything else is CSV.
PARQUET_SUFFIXES = (".parquet", ".pq")
JSON_LINES_SUFFIXES = (".jsonl", ".ndjson", ".jsonl.gz", ".ndjson.gz")


def table_format(path: str | Path) -> str:
    """``"Parquet file"``, ``"JSON lines file"`` or ``"CSV"``, by the end of the file's name."""
    name = Path(path).name.lower()
    if name.endswith(PARQUET_SUFFIXES):
        return "Parquet file"
    return "JSON lines file" if name.endswith(JSON_LINES_SUFFIXES) else "CSV"


def table_batches(
    path: str | Path,
    *,
    text_columns: tuple[str, ...] | None = (),
    na_values: tuple[str, ...] = (),
    rows: int | None = None,
    error: type[Exception] = ValueError,
) -> Iterator[pd.DataFrame]:
    """The rows of a CSV, Parquet or JSON lines file, ``rows`` (default ``BATCH_ROWS``) at a time,
    each batch indexed by the number of its rows as a person counts them: the first record
    (under a CSV's header) is row 1, and every record counts, a blank CSV line included.

    In a CSV, ``na_values`` are missing values and ``text_columns`` are read as text (never
    guessed to be numbers; None: every column). A file that cannot be read raises ``error``
    naming it (and, for a byte that is not UTF-8, its line). The file is closed when the
    batches end, or when the caller stops reading. ``describe_rows`` names rows with their lines.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    start = 1
    try:
        if CUTS_AT_NUL and table_format(path) == "CSV" and (line := first_nul(path)):
            raise error(
                f"{path}: not a readable CSV with pandas {pd.__version__} (line {line} holds a NUL byte, at which "
                "it would silently cut the value short; pandas 3, on Python 3.11 or later, reads it whole)"
            )
        with _open_table(path, text_columns, na_values, rows or BATCH_ROWS) as batches:
            for frame in batches:
                frame.index = pd.RangeIndex(start, start + len(frame))
                start += len(frame)
                yield frame
    except (ValueError, pa.ArrowException, EOFError, OSError) as err:  # parser errors are ValueErrors
        if isinstance(err, UnicodeDecodeError) and (where := first_non_utf8(path)):
            kind, (line, reason) = table_format(path), where
            raise error(f"{path}: not a readable {kind} (line {line} is not UTF-8 text: {reason})") from None
        if isinstance(err, (error, FileNotFoundError)) and not isinstance(err, UnicodeDecodeError):
            raise
        detail = " ".join(str(err).split()) or type(err).__name__
        raise error(f"{path}: not a readable {table_format(path)} ({detail})") from None


def describe_rows(path: str | Path, rows: list[int], more: bool = False) -> str:
    """``rows`` of a file read by ``table_batches`` (numbers from its index) as a person finds
    them: ``row 7 (line 9)``, ``rows [7, 12] (lines [9, 15])``; ``more``: there are others."""
    lines = row_lines(path, rows)
    if len(rows) == 1 and not more:
        return f"row {rows[0]}" + (f" (line {lines[0]})" if lines else "")
    return f"rows {rows}" + (" ..." if more else "") + (f" (lines {lines})" if lines else "")


def row_lines(path: str | Path, rows: list[int]) -> list[int] | None:
    """The line on which each of ``rows`` (numbered as by ``table_batches``) starts in a CSV or
    JSON lines file, as an editor counts lines: a quoted CSV value over several lines counts
    each of them, a blank line in a JSON lines file is no record. None for a Parquet file, or
    where the file cannot be read as text. It reads the file from its start up to the last of
    ``rows``: for messages about a few rows, not for every row."""
    kind, wanted = table_format(path), set(rows)
    if kind == "Parquet file" or not rows:
        return None
    found: dict[int, int] = {}
    try:
        with _text(Path(path)) as handle:
            if kind == "CSV":
                reader, start = csv.reader(handle), 1
                for number, _ in enumerate(reader):  # record 0 is the header
                    if number in wanted:
                        found[number] = start
                    if number >= max(wanted):
                        break
                    start = reader.line_num + 1
            else:
                number = 0
                for line, text in enumerate(handle, start=1):
                    number += bool(text.strip())
                    if text.strip() and number in wanted:
                        found[number] = line
                    if number >= max(wanted):
                        break
    except (OSError, EOFError, csv.Error, lzma.LZMAError):
        return None
    return [found[row] for row in rows] if wanted <= set(found) else None


def first_non_utf8(path: str | Path) -> tuple[int, str] | None:
    """(line, what is wrong) of the first line of a text file (compressed or not) that is not
    UTF-8; None when every line is. It reads the file up to that line."""
    try:
        with _binary(Path(path)) as handle:
            for line, raw in enumerate(handle, start=1):
                try:
                    raw.decode("utf-8")
                except UnicodeDecodeError as err:
                    return line, f"{err.reason} at byte {err.start + 1} of the line"
    except (OSError, EOFError, lzma.LZMAError):
        return None
    return None


# pandas before 3 ends a CSV value at a NUL byte without a word: the rest of the value is lost.
CUTS_AT_NUL = int(pd.__version__.split(".")[0]) < 3


def first_nul(path: str | Path) -> int | None:
    """The first line of a file (compressed or not) that holds a NUL byte; None where none does."""
    with _binary(Path(path)) as handle:
        for line, raw in enumerate(handle, start=1):
            if b"\0" in raw:
                return line
    return None


def first_line(path: str | Path) -> str | None:
    """The first line of a text file (compressed or not), without its line break; None if unreadable."""
    try:
        with _text(Path(path)) as handle:
            return handle.readline().rstrip("\r\n")
    except (OSError, EOFError, lzma.LZMAError):
        return None


_OPENERS: dict[str, Callable[..., Any]] = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}


def _binary(path: Path) -> IO[bytes]:
    """The bytes of a file, decompressed where its name ends in .gz, .bz2 or .xz (as pandas reads it)."""
    return _OPENERS.get(path.suffix.lower(), open)(path, "rb")


def _text(path: Path) -> io.TextIOWrapper:
    """A file's text, lines left as written (for ``csv``), undecodable bytes replaced."""
    return io.TextIOWrapper(_binary(path), encoding="utf-8", errors="replace", newline="")


@contextmanager
def _open_table(
    path: Path, text_columns: tuple[str, ...] | None, na_values: tuple[str, ...], rows: int
) -> Iterator[Iterator[pd.DataFrame]]:
    kind = table_format(path)
    if kind == "Parquet file":
        with pq.ParquetFile(path) as file:
            yield (batch.to_pandas() for batch in file.iter_batches(batch_size=rows))
    elif kind == "JSON lines file":
        with pd.read_json(path, lines=True, chunksize=rows, dtype=False) as reader:
            yield reader
    else:
        dtype: Any = str if text_columns is None else dict.fromkeys(text_columns, str)
        # A blank line is a row (of missing values), never skipped: skipping it would renumber
        # every later row, and tie each prediction to the wrong input.
        with pd.read_csv(
            path,
            na_values=list(na_values),
            keep_default_na=False,
            chunksize=rows,
            dtype=dtype,
            skip_blank_lines=False,
        ) as reader:
            yield reader


def _temporary_file(suffix: str) -> Path:
    handle, name = tempfile.mkstemp(prefix=PREFIX, suffix=suffix)
    os.close(handle)
    return Path(name)


def _remove(path: Path, owner: int) -> None:
    """Delete ``path``, in the process that made it only (not in a forked worker that exits)."""
    if os.getpid() == owner:
        path.unlink(missing_ok=True)


# The removals of this process's temporary files still to come: run when their store is
# collected, at the interpreter's exit, or by ``remove_temporary_files`` (a process that
# leaves by os._exit, without the interpreter's teardown).
_REMOVALS: set[weakref.finalize] = set()


def _remove_when_collected(owner: object, path: Path) -> None:
    _REMOVALS.difference_update([removal for removal in list(_REMOVALS) if not removal.alive])
    _REMOVALS.add(weakref.finalize(owner, _remove, path, os.getpid()))


def remove_temporary_files() -> None:
    """Delete every temporary file this process's stores still hold (they can no longer be read)."""
    for removal in list(_REMOVALS):
        removal()
    _REMOVALS.clear()


class ArrowItems:
    """Rows of an Arrow file on disk; ``read(rows)`` gives ``to_inputs(table of those rows, rows)``.

    ``to_inputs`` turns Arrow rows into the task's raw inputs (a pandas object indexed by each
    row's id, which it computes from the positions ``rows``). The file holds record batches of
    at most ``ARROW_BATCH`` rows; a read loads only the record batches its rows sit in (the
    last two are kept, for reads in file order). Build one with ``ArrowWriter``.
    """

    def __init__(self, path: Path, to_inputs: Callable[[pa.Table, np.ndarray], Any], batch_rows: list[int]) -> None:
        self.path = Path(path)
        self.to_inputs = to_inputs
        self._starts = np.cumsum([0, *batch_rows], dtype=np.int64)
        self._open()

    def _open(self) -> None:
        file = pa.OSFile(str(self.path), "r")
        weakref.finalize(self, file.close)
        self._reader = ipc.open_file(file)
        self.schema = self._reader.schema
        self._cache: dict[int, pa.RecordBatch] = {}

    def _batch(self, number: int) -> pa.RecordBatch:
        if number not in self._cache:
            if len(self._cache) >= 2:
                del self._cache[next(iter(self._cache))]
            self._cache[number] = self._reader.get_batch(number)
        return self._cache[number]

    def __len__(self) -> int:
        return int(self._starts[-1])

    def table(self, rows: np.ndarray) -> pa.Table:
        """The Arrow rows at positions ``rows``, in that order, reading only the record batches they sit in."""
        rows = np.asarray(rows, dtype=np.int64)
        if len(rows) and (rows.min() < 0 or rows.max() >= len(self)):
            raise IndexError(f"rows out of range for {len(self)} rows")
        batch = np.searchsorted(self._starts, rows, side="right") - 1
        order = np.argsort(batch, kind="stable")
        parts = [self._batch(b).take(pa.array(rows[batch == b] - self._starts[b])) for b in np.unique(batch).tolist()]
        grouped = pa.Table.from_batches(parts, schema=self.schema)
        if np.all(order[:-1] < order[1:]):  # already in the order asked for (rows in file order)
            return grouped
        back = np.empty_like(order)
        back[order] = np.arange(len(order))
        return grouped.take(pa.array(back))

    def read(self, rows: np.ndarray) -> Any:
        rows = np.asarray(rows, dtype=np.int64)
        return self.to_inputs(self.table(rows), rows)

    def __getstate__(self) -> dict[str, Any]:  # a spawned worker reopens the file, it is not copied
        return {"path": self.path, "to_inputs": self.to_inputs, "starts": self._starts}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.path, self.to_inputs, self._starts = state["path"], state["to_inputs"], state["starts"]
        self._open()


class ArrowWriter:
    """Append Arrow tables of one schema to a temporary Arrow file; ``finish`` gives the ``ArrowItems``.

    The schema is ``schema``, or else that of the first table written. Use as a context manager:
    on an error the file is removed, so nothing half-written stays behind.
    """

    def __init__(self, schema: pa.Schema | None = None) -> None:
        self.schema = schema
        self.path = _temporary_file(".arrow")
        self._writer: ipc.RecordBatchFileWriter | None = None
        self._batch_rows: list[int] = []

    @property
    def rows(self) -> int:
        return sum(self._batch_rows)

    def write(self, table: pa.Table) -> None:
        if self.schema is None:
            self.schema = table.schema
        if self._writer is None:
            self._writer = ipc.new_file(str(self.path), self.schema)
        for batch in table.cast(self.schema).to_batches(max_chunksize=ARROW_BATCH):
            self._writer.write_batch(batch)
            self._batch_rows.append(batch.num_rows)

    def finish(self, to_inputs: Callable[[pa.Table, np.ndarray], Any]) -> ArrowItems:
        if self._writer is None:  # nothing written: an empty file of the schema (or of no columns)
            self._writer = ipc.new_file(str(self.path), self.schema or pa.schema([]))
        self._writer.close()
        items = ArrowItems(self.path, to_inputs, self._batch_rows)
        _remove_when_collected(items, self.path)
        return items

    def __enter__(self) -> ArrowWriter:
        return self

    def __exit__(self, kind, error, trace) -> None:
        if kind is not None:
            if self._writer is not None:
                self._writer.close()
            self.path.unlink(missing_ok=True)


class DiskArray:
    """A numpy array in a temporary file: ``array[rows]`` (an int, a slice or an array of ints) reads
    only those rows, with positioned reads, so the process's memory does not grow with the file.

    ``DiskArray.write(chunks)`` appends arrays of the same dtype and row width (or a flat run of
    values) to the file in a streamed pass; the first dimension is the sum of the chunks'.
    """

    def __init__(self, path: Path, dtype: np.dtype, shape: tuple[int, ...]) -> None:
        self.path, self.dtype, self.shape = Path(path), np.dtype(dtype), tuple(shape)
        self._row_bytes = self.dtype.itemsize * int(np.prod(self.shape[1:], dtype=np.int64))
        self._open()

    def _open(self) -> None:
        self._fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        weakref.finalize(self, os.close, self._fd)

    @classmethod
    def write(cls, chunks: Iterable[np.ndarray], dtype: Any, row_shape: tuple[int, ...] | None = None) -> DiskArray:
        """Append ``chunks`` (arrays of ``dtype`` and rows of ``row_shape``; by default that of the
        first chunk) to a new temporary file, in a streamed pass. Nothing stays behind on an error."""
        dtype = np.dtype(dtype)
        path = _temporary_file(".bin")
        rows = 0
        try:
            with path.open("wb") as handle:
                for chunk in chunks:
                    chunk = np.ascontiguousarray(chunk, dtype=dtype)
                    if row_shape is None:
                        row_shape = chunk.shape[1:]
                    if chunk.shape[1:] != tuple(row_shape):
                        raise ValueError(f"rows of shape {chunk.shape[1:]}, expected {tuple(row_shape)}")
                    handle.write(chunk.tobytes())
                    rows += len(chunk)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        array = cls(path, dtype, (rows, *(row_shape or ())))
        _remove_when_collected(array, path)
        return array

    def __len__(self) -> int:
        return self.shape[0]

    def _read(self, start: int, rows: int) -> np.ndarray:
        """``rows`` rows from row ``start`` on: one positioned read (the file's offset is never moved,
        so forked DataLoader workers that share the open file do not disturb each other)."""
        size = rows * self._row_bytes
        if hasattr(os, "pread"):
            data = os.pread(self._fd, size, start * self._row_bytes)
        else:  # Windows: no positioned read; a file of its own per process (see __setstate__)
            os.lseek(self._fd, start * self._row_bytes, os.SEEK_SET)
            data = os.read(self._fd, size)
        if len(data) != size:
            raise OSError(f"{self.path}: {len(data)} bytes read of {size}: the file was cut short")
        return np.frombuffer(data, dtype=self.dtype).reshape(rows, *self.shape[1:])

    def __getitem__(self, index: Any) -> np.ndarray:
        """A copy in memory of the rows at ``index``: the caller may keep or change it."""
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            if step != 1:
                raise IndexError("a DiskArray slice takes every row (step 1)")
            return self._read(start, max(stop - start, 0)).copy()
        rows = np.asarray(index, dtype=np.int64)
        if rows.size and (rows.min() < 0 or rows.max() >= len(self)):
            raise IndexError(f"rows out of range for {len(self)} rows")
        if rows.ndim == 0:
            return self._read(int(rows), 1)[0].copy()
        result = np.empty((len(rows), *self.shape[1:]), dtype=self.dtype)
        for i, row in enumerate(rows.tolist()):
            result[i] = self._read(row, 1)[0]
        return result

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "dtype": self.dtype.str, "shape": self.shape}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.path, self.dtype, self.shape = state["path"], np.dtype(state["dtype"]), tuple(state["shape"])
        self._row_bytes = self.dtype.itemsize * int(np.prod(self.shape[1:], dtype=np.int64))
        self._open()


class RunningMoments:
    """Count, mean and variance of each column of the batches ``add``-ed, in one pass and constant memory.

    Batches are merged with Chan et al.'s pairwise update (float64), which keeps the variance
    exact to rounding however many batches there are, unlike a running sum of squares.
    """

    def __init__(self, columns: int) -> None:
        self.count = 0
        self.mean = np.zeros(columns)
        self.m2 = np.zeros(columns)

    def add(self, values: np.ndarray) -> None:
        """Fold in ``values`` of shape (rows, columns)."""
        values = np.asarray(values, dtype=np.float64)
        rows = len(values)
        if rows == 0:
            return
        mean = values.mean(axis=0)
        m2 = ((values - mean) ** 2).sum(axis=0)
        total = self.count + rows
        delta = mean - self.mean
        self.mean = self.mean + delta * (rows / total)
        self.m2 = self.m2 + m2 + delta**2 * (self.count * rows / total)
        self.count = total

    @property
    def std(self) -> np.ndarray:
        """The population standard deviation (``ddof=0``) of each column."""
        return np.sqrt(self.m2 / max(self.count, 1))


def sample_rows(rows: int, size: int, seed: int = 0) -> np.ndarray:
    """Positions of a seeded random sample of ``size`` of ``rows`` rows, in order; every row when there are fewer."""
    if rows <= size:
        return np.arange(rows, dtype=np.int64)
    return np.sort(np.random.default_rng(seed).choice(rows, size, replace=False)).astype(np.int64)
