"""The task's data package held to the seam that ``task.py`` describes, for the type checker.

``nox -s lint`` runs mypy over ``src/``: each name the core imports from ``data/`` is assigned here
to the type the core expects, so a data package that drifts from the seam (a ``Preprocessor``
without ``collate``, a ``load_examples`` that takes no path) fails the lint on the line of that
name, before any test runs. Nothing imports this module when the project runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path
    from typing import Any

    from . import data
    from .task import Examples, Items, PreprocessorProtocol

    preprocessor: type[PreprocessorProtocol] = data.Preprocessor
    load_examples: Callable[[str | None], Examples] = data.load_examples
    read_inputs: Callable[[str], Items] = data.read_inputs
    request_format: str = data.REQUEST_FORMAT
    request_inputs: Callable[[list[Any]], Any] = data.request_inputs
    training_defaults: dict[str, Any] = data.TRAINING_DEFAULTS
    input_size: tuple[int, str] | None = data.INPUT_SIZE
    embedded_dataset_path: Callable[[], Path] = data.embedded_dataset_path
