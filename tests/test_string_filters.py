"""The Jinja filters that put free text inside TOML and Python strings read back as the text."""

from __future__ import annotations

import ast
from pathlib import Path

import tomllib
from conftest import BIN, run
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from local_extensions import python_string, toml_string

# Any text, lone surrogates aside (no file can hold them; the pre-generation hook refuses them).
TEXT = st.text(st.characters(exclude_categories=("Cs",)))
QUOTES = st.text(st.sampled_from(['"', "'", "\\", "a", " ", "\n", "\x7f", "\u200b"]))


@given(text=st.one_of(TEXT, QUOTES))
def test_toml_string_reads_back_as_the_text(text: str) -> None:
    literal = toml_string(text)
    assert tomllib.loads(f"value = {literal}")["value"] == text, literal


@given(text=st.one_of(TEXT, QUOTES))
def test_python_string_evaluates_to_the_text(text: str) -> None:
    literal = python_string(text)
    assert ast.literal_eval(literal) == text, literal
    assert "\n" not in literal, f"{literal!r} spans lines"


@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=st.lists(st.one_of(TEXT, QUOTES), min_size=1, max_size=20))
def test_python_string_is_as_ruff_formats_it(tmp_path: Path, texts: list[str]) -> None:
    """Generated files pass `ruff format --check`: the literal's quotes are the ones ruff keeps."""
    source = tmp_path / "names.py"
    source.write_text("".join(f"NAME_{i} = {python_string(text)}\n" for i, text in enumerate(texts)))
    formatter = [BIN / "ruff", "format", "--no-cache", "--isolated", "--line-length=120", "--diff", source]
    diff = run(*formatter, cwd=tmp_path, check=False)
    assert diff.returncode == 0, f"ruff would rewrite the literals:\n{diff.stdout}{diff.stderr}"
