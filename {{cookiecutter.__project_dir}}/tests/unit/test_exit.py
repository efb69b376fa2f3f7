"""A process torchrun started leaves by ``os._exit``, its temporary files removed and its output
flushed: the interpreter's teardown could abort it after a good run."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from {{ cookiecutter.package_name }} import cli, store


class Left(Exception):
    """Raised in place of os._exit: the code it was given."""


@pytest.fixture
def exits(monkeypatch):
    def leave(code: int) -> None:
        raise Left(code)

    monkeypatch.setattr(cli.os, "_exit", leave)


def test_a_torchrun_process_leaves_by_os_exit_with_its_exit_status(exits, monkeypatch, capsys):
    monkeypatch.setenv(cli.TORCHRUN, "run-1")
    with pytest.raises(Left) as left:
        cli.main(["train", "--threads", "0"])
    assert left.value.args == (2,), f"left with {left.value.args}, expected the exit status 2"
    assert "--threads must be at least 1" in capsys.readouterr().err, "the error was not written before leaving"


def test_outside_torchrun_main_returns_its_exit_status(exits, monkeypatch):
    monkeypatch.delenv(cli.TORCHRUN, raising=False)
    assert cli.main(["train", "--threads", "0"]) == 2


def test_leaving_removes_the_temporary_files_of_stores_still_alive(exits, tmp_path, monkeypatch):
    monkeypatch.setattr(store.tempfile, "tempdir", str(tmp_path))
    with store.ArrowWriter(pa.schema([("a", pa.int64())])) as writer:
        writer.write(pa.table({"a": [1, 2, 3]}))
        items = writer.finish(lambda table, rows: table)
    array = store.DiskArray.write([np.arange(6, dtype=np.int32).reshape(3, 2)], np.int32)
    assert len(list(tmp_path.iterdir())) == 2, f"expected two store files, found {list(tmp_path.iterdir())}"
    with pytest.raises(Left):
        cli.leave_now(0)
    left = sorted(p.name for p in tmp_path.iterdir())
    assert not left, f"leaving kept {left} while their stores were alive"
    del items, array
