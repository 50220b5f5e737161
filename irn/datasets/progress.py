"""The one progress bar of the dataset tools: bytes, on stderr, refreshed at most twice a second."""

from __future__ import annotations

import sys

from tqdm import tqdm


def byte_bar(total: int | None, desc: str, enabled: bool, initial: int = 0) -> tqdm:
    """A tqdm bar counting bytes (``total`` None: size unknown); off when not ``enabled``."""
    return tqdm(
        total=total,
        initial=initial,
        desc=desc,
        unit="B",
        unit_scale=True,
        file=sys.stderr,
        disable=not enabled,
        dynamic_ncols=True,
        mininterval=0.5,
    )
