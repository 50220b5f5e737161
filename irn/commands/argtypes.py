"""Number parsers for argparse ``type=``: one shape, one message style (``irn: error: ... got X``)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T", int, float)


def number_type(
    convert: Callable[[str], T], expected: str, valid: Callable[[T], bool], complaint: str
) -> Callable[[str], T]:
    """An argparse type: ``convert(text)`` (a ValueError becomes "expected EXPECTED, got 'text'"),
    infinities and NaN refused, then ``valid(value)`` or ``complaint`` formatted with ``text`` and ``value``."""

    def parse(text: str) -> T:
        try:
            value = convert(text)
        except (ValueError, OverflowError):  # OverflowError: int(float("inf"))
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
        if not valid(value):
            raise argparse.ArgumentTypeError(complaint.format(text=text, value=value))
        return value

    return parse


#: --seed: what torch.Generator.manual_seed takes, from 0
seed_type = number_type(int, "an integer", lambda v: 0 <= v < 2**63, "a seed must be in [0, 2^63), got {text}")


def with_suffixes(factors: dict[str, int]) -> Callable[[str], int]:
    """``"1.5G"`` -> int(1.5 * factors["G"]); no suffix -> factor 1 (case-insensitive)."""

    def convert(text: str) -> int:
        t, factor = text.strip().upper(), 1
        for suffix, f in factors.items():
            if t.endswith(suffix):
                factor, t = f, t[: -len(suffix)]
                break
        return int(float(t) * factor)

    return convert
