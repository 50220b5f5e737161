"""The one progress bar of irn: tqdm on stderr, shown only when stderr is a terminal.

Long work (evaluation, rescaling a folder, decay cycles, downloads, extraction, verification) shows
a bar while a person watches; piped or logged to a file, the bar stays silent (no ``\\r`` redraws in
the log), and the command's own lines carry the result. Importing this module does not import torch.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

from tqdm import tqdm


def progress_bar(
    iterable: Iterable[Any] | None = None,
    *,
    desc: str,
    total: int | None = None,
    unit: str = "it",
    enabled: bool = True,
    unit_scale: bool = False,
    initial: int = 0,
    leave: bool = False,
) -> tqdm:
    """A tqdm bar on stderr, off when not ``enabled`` or when stderr is not a terminal.

    Refreshed at most twice a second; ``tqdm.write`` prints a line above it without breaking it.
    """
    return tqdm(
        iterable,
        desc=desc,
        total=total,
        unit=unit,
        unit_scale=unit_scale,
        initial=initial,
        leave=leave,
        file=sys.stderr,
        disable=None if enabled else True,  # None: tqdm turns itself off on a non-terminal stream
        dynamic_ncols=True,
        mininterval=0.5,
    )


def byte_bar(total: int | None, desc: str, enabled: bool, initial: int = 0) -> tqdm:
    """A bar counting bytes (``total`` None: size unknown), kept on screen when done."""
    return progress_bar(desc=desc, total=total, unit="B", unit_scale=True, enabled=enabled, initial=initial, leave=True)
