"""Run folders: names, the hash of the settings, refusals, the ``latest`` pointer with and without links."""

from __future__ import annotations

from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.config import TrainConfig
from {{ cookiecutter.package_name }}.training import runs


def test_the_folder_name_hash_follows_what_is_learned_not_where_it_goes() -> None:
    base = TrainConfig()
    elsewhere = TrainConfig(output_dir="elsewhere", name="x", device="cpu", report=not base.report)
    assert runs.config_hash(base) == runs.config_hash(elsewhere), "where a run goes changed the hash"
    changed = [
        TrainConfig(learning_rate=base.learning_rate * 2),
        TrainConfig(seed=1),
        TrainConfig(epochs=base.epochs + 1),
    ]
    assert len({runs.config_hash(c) for c in [base, *changed]}) == 4, "a changed setting kept the hash"
    assert runs.run_folder_name(base, now=0).startswith("19700101-000000-")


def test_runs_started_in_the_same_second_get_folders_of_their_own(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(runs, "run_folder_name", lambda config: "20260101-000000-abcdef12")
    config = TrainConfig(runs_dir=str(tmp_path))
    folders = [runs.claim_run_folder(config) for _ in range(3)]
    assert [f.name for f in folders] == [
        "20260101-000000-abcdef12",
        "20260101-000000-abcdef12-2",
        "20260101-000000-abcdef12-3",
    ]


@pytest.mark.parametrize("name", ["../up", "a/b", "", "latest", "-x", "a b"])
def test_a_name_that_is_not_one_folder_is_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match="run name"):
        runs.claim_run_folder(TrainConfig(runs_dir=str(tmp_path / "runs"), name=name))
    assert not any((tmp_path / "runs").iterdir()), "a refused name left a folder"


def test_resuming_into_the_run_s_own_folder_is_allowed(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "checkpoint.pt").write_bytes(b"x")
    config = TrainConfig(output_dir=str(folder), resume=str(folder / "checkpoint.pt"))
    assert runs.claim_run_folder(config) == folder
    with pytest.raises(ValueError, match="already holds a run"):
        runs.claim_run_folder(TrainConfig(output_dir=str(folder)))


def test_latest_is_a_link_replaced_in_place(tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        runs.point_latest_at(tmp_path / name)
    assert (tmp_path / "latest").is_symlink()
    assert runs.resolve_latest(tmp_path) == (tmp_path / "b").resolve()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "latest"], "a temporary link was left"


def test_where_links_cannot_be_made_latest_is_a_file_naming_the_folder(tmp_path: Path, monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise OSError("symbolic links are not allowed here")

    monkeypatch.setattr(Path, "symlink_to", refuse)
    (tmp_path / "a").mkdir()
    runs.point_latest_at(tmp_path / "a")
    assert (tmp_path / "latest").read_text() == "a\n"
    assert runs.resolve_latest(tmp_path) == tmp_path / "a"
    with pytest.raises(FileNotFoundError, match="no run"):
        runs.resolve_latest(tmp_path / "nothing")
