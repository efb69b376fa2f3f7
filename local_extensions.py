"""Jinja filters for answers that land inside string literals of generated files.

A project's name, description or author is free text: a quote or a backslash in it must
not end a string early or start an escape. Cookiecutter and cruft load these filters
through ``_extensions`` in cookiecutter.json (cookiecutter's local extensions), e.g.
``description = {{ cookiecutter.description | toml_string }}``.
"""

from __future__ import annotations

from jinja2 import Environment
from jinja2.ext import Extension


def toml_string(value: object) -> str:
    """A TOML basic string, quotes included, that reads back as ``value``.

    Quotes and backslashes are escaped, control characters (TOML allows only the tab) written
    as ``\\uXXXX``; everything else is kept as typed.
    """
    escaped = []
    for char in str(value):
        if char in '"\\':
            escaped.append("\\" + char)
        elif char != "\t" and (ord(char) < 0x20 or ord(char) == 0x7F):
            escaped.append(f"\\u{ord(char):04x}")
        else:
            escaped.append(char)
    return '"' + "".join(escaped) + '"'


def python_string(value: object) -> str:
    """A Python string literal, quotes included, that evaluates to ``value``.

    Its quotes are the ones ruff's formatter keeps (double, unless the text holds more double
    quotes than single ones), so ``ruff format --check`` passes on the generated file. Quotes
    and backslashes are escaped, characters Python does not print (a line break, a zero-width
    space) written as escapes; everything else is kept as typed.
    """
    text = str(value)
    quote = "'" if text.count('"') > text.count("'") else '"'
    escaped = []
    for char in text:
        if char in ("\\", quote):
            escaped.append("\\" + char)
        elif char.isprintable():
            escaped.append(char)
        else:
            escaped.append(repr(char)[1:-1])
    return quote + "".join(escaped) + quote


class StringLiterals(Extension):
    """Registers ``toml_string`` and ``python_string`` as Jinja filters."""

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        environment.filters["toml_string"] = toml_string
        environment.filters["python_string"] = python_string
