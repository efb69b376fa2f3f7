"""Progress display for long work: a bar on a terminal, silence elsewhere (logs, tests, CI)."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import Any

from tqdm.auto import tqdm


def progress(
    items: Iterable[Any], *, total: int | None = None, desc: str = "", enabled: bool | None = None
) -> Iterator[Any]:
    """Wrap ``items`` in a progress bar when ``enabled`` (default: only when stderr is a terminal)."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    return tqdm(items, total=total, desc=desc, disable=not enabled, leave=False, dynamic_ncols=True)
