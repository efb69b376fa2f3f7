"""Checkpoint files: exact round trip, strict keys, clear errors, weights-only loading, atomic
writes with the umask's mode; file fingerprints."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
import stat
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from {{ cookiecutter.package_name }}.checkpoint import (
    FORMAT_VERSION,
    REQUIRED_KEYS,
    Checkpoint,
    CheckpointError,
    load_checkpoint,
    load_model_state,
    read_checkpoint,
    save_checkpoint,
)
from {{ cookiecutter.package_name }}.files import atomic_open, fingerprint, write_json, write_text
from {{ cookiecutter.package_name }}.models import available_models
from {{ cookiecutter.package_name }}.testing import assert_checkpoint_round_trip
from {{ cookiecutter.package_name }}.training import capture_rng_state

# Words of torch's advice to load a refused file anyway (with ``weights_only=False`` or by allowing its
# classes): a checkpoint error never passes them on.
UNSAFE_ADVICE = ("weights_only", "safe_globals", "trusted source")


def assert_own_message(error: Exception, path: Path) -> None:
    message = str(error)
    assert "\n" not in message, f"a multi-line error: {message!r}"
    advice = [words for words in UNSAFE_ADVICE if words in message.replace(str(path), "")]
    assert not advice, f"the error passes on torch's advice to load the file anyway ({advice}): {message}"


def checkpoint_for(model: torch.nn.Module, **changes) -> Checkpoint:
    return Checkpoint(
        **{
            "model_name": "test",
            "model_options": {"hidden_size": 16},
            "model_state": model.state_dict(),
            "preprocessor": {},
            "config": {"seed": 0},
            "epoch": 0,
            "rng_state": capture_rng_state(),
            **changes,
        }
    )


def payload_for(model: torch.nn.Module, **changes) -> dict:
    """What ``torch.save`` writes for a checkpoint, with ``changes`` (of any type) in it."""
    return {**checkpoint_for(model).to_payload(), **changes}


@pytest.fixture
def some_model(make_model) -> torch.nn.Module:
    """One registered model, for the checks of the file format that do not depend on the model."""
    return make_model(available_models()[0])


def test_save_then_load_restores_weights_and_outputs_exactly(model_name, make_model, tiny_batch, tmp_path):
    features, _ = tiny_batch
    model = make_model(model_name)
    # Move the weights and the batch-norm statistics away from the ones a fresh model starts with.
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
        model.train()(features)
    assert_checkpoint_round_trip(model, lambda: make_model(model_name), features, tmp_path / "checkpoint.pt")


def test_missing_weights_are_refused_naming_the_keys(tiny_model):
    state = tiny_model.state_dict()
    dropped = next(iter(state))
    del state[dropped]
    with pytest.raises(CheckpointError, match=rf"missing keys \['{dropped}'\]"):
        load_model_state(tiny_model, state)


def test_unexpected_weights_are_refused_naming_the_keys(tiny_model):
    state = tiny_model.state_dict()
    state["extra_head.weight"] = torch.zeros(3, 3)
    with pytest.raises(CheckpointError, match=r"unexpected keys \['extra_head.weight'\]"):
        load_model_state(tiny_model, state)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_weights_that_are_not_finite_are_refused_naming_them(tiny_model, value):
    state = tiny_model.state_dict()
    name = next(key for key, t in state.items() if t.is_floating_point())
    state[name] = state[name].clone().fill_(value)
    with pytest.raises(CheckpointError, match=rf"nan or infinite \({re.escape(name)}\).*diverged"):
        load_model_state(tiny_model, state)


def test_weights_of_another_shape_are_refused(model_name, make_model, preprocessor):
    # Every model honours num_classes (not every model has a hidden_size to change): a head for
    # one class more has weights of another shape.
    other = make_model(model_name, num_classes=len(preprocessor.classes) + 1).state_dict()
    with pytest.raises(CheckpointError, match="does not match"):
        load_model_state(make_model(model_name), other)


def test_a_truncated_file_is_a_checkpoint_error(some_model, tmp_path):
    path = save_checkpoint(checkpoint_for(some_model), tmp_path / "checkpoint.pt")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_checkpoint(path)


@pytest.mark.parametrize(
    "content",
    [b"", b"not a checkpoint at all", b"this is not a checkpoint", b"PK\x03\x04 half a zip"],
    ids=["empty", "text", "text-starting-with-a-pickle-opcode", "broken-zip"],
)
def test_a_corrupt_file_is_a_checkpoint_error(tmp_path, content):
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=r"checkpoint\.pt") as raised:
        load_checkpoint(path)
    assert_own_message(raised.value, path)


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_a_plain_pickle_is_refused_in_our_own_words(some_model, tmp_path, protocol):
    # torch.load warns that protocols above 2 are "not the default" and asks to file an issue.
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(pickle.dumps({"model_state": {"weight": [1.0]}, "epoch": 1}, protocol=protocol))
    with pytest.raises(CheckpointError, match=r"checkpoint\.pt: a plain pickle file, not a checkpoint") as raised:
        load_checkpoint(path)
    assert_own_message(raised.value, path)


@settings(max_examples=50, deadline=None)
@given(content=st.binary(max_size=64))
def test_any_bytes_that_are_not_a_checkpoint_give_a_checkpoint_error(tmp_path_factory, content):
    path = tmp_path_factory.mktemp("corrupt") / "checkpoint.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=r"checkpoint\.pt") as raised:
        load_checkpoint(path)
    assert_own_message(raised.value, path)


def test_a_missing_file_is_a_checkpoint_error(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "absent.pt")


@pytest.mark.parametrize("key", sorted(REQUIRED_KEYS))
def test_a_payload_without_a_required_entry_is_refused_naming_it(some_model, tmp_path, key):
    payload = payload_for(some_model)
    del payload[key]
    path = tmp_path / "checkpoint.pt"
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match=key):
        load_checkpoint(path)


def test_every_entry_survives_a_round_trip_and_a_checkpoint_without_kept_weights_serves_its_last_epoch(
    some_model, tmp_path
):
    resume = {name: tensor + 1 for name, tensor in some_model.state_dict().items()}
    full = checkpoint_for(some_model, epoch=5, kept_epoch=3, kept_val_loss=0.25, resume_model_state=resume)
    back = load_checkpoint(save_checkpoint(full, tmp_path / "full.pt"))
    assert (back.epoch, back.kept_epoch, back.kept_val_loss, back.served_epoch) == (5, 3, 0.25, 3)
    assert back.resume_model_state is not None, "the weights to resume from were not kept"
    assert back.resume_model_state.keys() == resume.keys()
    older = payload_for(some_model, epoch=4)  # written before runs kept their best epoch
    torch.save({key: value for key, value in older.items() if not key.startswith("kept_")}, tmp_path / "older.pt")
    read = load_checkpoint(tmp_path / "older.pt")
    assert (read.served_epoch, read.resume_model_state) == (4, None), "an older checkpoint serves its last epoch"


def test_another_format_version_is_refused(some_model, tmp_path):
    path = tmp_path / "checkpoint.pt"
    torch.save(payload_for(some_model, format_version=FORMAT_VERSION + 1), path)
    with pytest.raises(CheckpointError, match="format"):
        load_checkpoint(path)


def test_a_file_that_holds_no_dict_is_refused(tmp_path):
    path = tmp_path / "checkpoint.pt"
    torch.save([torch.zeros(2)], path)
    with pytest.raises(CheckpointError, match="expected a dict"):
        load_checkpoint(path)


def test_loading_is_weights_only_so_pickled_code_never_runs(some_model, pickled_code, tmp_path):
    path = tmp_path / "checkpoint.pt"
    torch.save(payload_for(some_model, config=pickled_code), path)
    with pytest.raises(CheckpointError, match=r"refused: .*mkdir.*could run code") as raised:
        load_checkpoint(path)
    assert not pickled_code.ran(), "loading the checkpoint ran pickled code: torch.load without weights_only=True"
    assert_own_message(raised.value, path)


def test_a_whole_pickled_model_is_refused_naming_its_class(some_model, tmp_path):
    # torch.save(model) pickles the module object itself: loading it means importing and running its class.
    path = tmp_path / "checkpoint.pt"
    torch.save(payload_for(some_model, model_state=some_model), path)
    with pytest.raises(CheckpointError, match=rf"refused: .*{type(some_model).__name__}") as raised:
        load_checkpoint(path)
    assert_own_message(raised.value, path)


def test_the_fingerprint_is_the_sha256_of_the_file(some_model, tmp_path):
    path = save_checkpoint(checkpoint_for(some_model), tmp_path / "checkpoint.pt")
    checkpoint, fingerprint = read_checkpoint(path)
    assert fingerprint == hashlib.sha256(path.read_bytes()).hexdigest(), "the fingerprint is not the file's sha256"
    assert checkpoint.epoch == 0
    save_checkpoint(checkpoint_for(some_model, epoch=1), path)
    assert read_checkpoint(path)[1] != fingerprint, "another checkpoint got the same fingerprint"


def test_a_successful_save_leaves_only_the_checkpoint(some_model, tmp_path):
    save_checkpoint(checkpoint_for(some_model), tmp_path / "checkpoint.pt")
    save_checkpoint(checkpoint_for(some_model, epoch=1), tmp_path / "checkpoint.pt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]
    assert load_checkpoint(tmp_path / "checkpoint.pt").epoch == 1


def test_a_failed_save_keeps_the_previous_checkpoint_and_leaves_no_temporary_file(some_model, tmp_path):
    path = save_checkpoint(checkpoint_for(some_model, epoch=1), tmp_path / "checkpoint.pt")
    before = path.read_bytes()
    unpicklable = checkpoint_for(some_model, epoch=2, config={"callback": lambda: None})
    with pytest.raises((AttributeError, TypeError, pickle.PicklingError), match=r"pickle|lambda|local object"):
        save_checkpoint(unpicklable, path)
    assert path.read_bytes() == before, "a failed save changed the previous checkpoint (not written atomically)"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"], "a temporary file was left behind"
    assert load_checkpoint(path).epoch == 1


def test_json_is_written_strict_and_a_nan_is_refused_naming_where_it_sits(tmp_path):
    path = tmp_path / "metrics.json"
    with pytest.raises(ValueError, match=r"metrics\.json: val_loss=nan, rows\.test\[1\]=inf cannot be written as JSON"):
        write_json({"val_loss": float("nan"), "rows": {"test": [1.0, float("inf")]}, "seed": 0}, path)
    assert not path.exists(), "a refused JSON file was written"
    write_json({"val_loss": 0.5}, path)
    assert json.loads(path.read_text(), parse_constant=lambda name: pytest.fail(f"{name} in strict JSON")) == {
        "val_loss": 0.5
    }


def test_text_files_are_written_atomically_too(tmp_path):
    path = tmp_path / "metrics.json"
    write_text("old", path)
    with pytest.raises(TypeError):
        write_text(None, path)  # type: ignore[arg-type]
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o077])
def test_written_files_get_the_mode_the_umask_gives_not_a_private_one(some_model, tmp_path, umask):
    """A checkpoint written with umask 022 is readable by the group and others, as any file
    the user writes; with 077 it is private. A bare temporary file would always be 0600."""
    previous = os.umask(umask)
    try:
        checkpoint = save_checkpoint(checkpoint_for(some_model), tmp_path / "checkpoint.pt")
        write_text("{}", tmp_path / "metrics.json")
    finally:
        os.umask(previous)
    expected = 0o666 & ~umask
    for path in (checkpoint, tmp_path / "metrics.json"):
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == expected, f"{path.name} has mode {mode:o}; umask {umask:03o} gives {expected:o}"


def test_a_fingerprint_changes_with_any_byte_or_file_and_only_then(tmp_path):
    folder = tmp_path / "golden"
    (folder / "a").mkdir(parents=True)
    (folder / "a" / "1.png").write_bytes(b"one")
    (folder / "2.png").write_bytes(b"two")
    first = fingerprint(folder)
    assert fingerprint(folder) == first, "the same folder gave two fingerprints"
    assert fingerprint(folder / "2.png") == hashlib.sha256(b"two").hexdigest()
    (folder / "2.png").write_bytes(b"twO")
    edited = fingerprint(folder)
    (folder / "2.png").rename(folder / "3.png")
    renamed = fingerprint(folder)
    (folder / "4.png").write_bytes(b"")
    added = fingerprint(folder)
    assert len({first, edited, renamed, added}) == 4, "an edit, a rename or a new file left the fingerprint as it was"
    with pytest.raises(FileNotFoundError, match="no such file"):
        fingerprint(tmp_path / "missing")


def test_a_write_that_may_not_overwrite_never_replaces_a_file_that_appeared_meanwhile(tmp_path):
    path = tmp_path / "predictions.csv"

    def write_while_another_file_appears():
        with atomic_open(path, "w", overwrite=False) as handle:
            handle.write("new")
            path.write_text("written by someone else meanwhile")

    with pytest.raises(FileExistsError, match="already exists"):
        write_while_another_file_appears()
    assert path.read_text() == "written by someone else meanwhile", "the other file was replaced"
    assert [p.name for p in tmp_path.iterdir()] == ["predictions.csv"], "a temporary file was left behind"
    write_text("new", tmp_path / "fresh.csv", overwrite=False)
    assert (tmp_path / "fresh.csv").read_text() == "new"
