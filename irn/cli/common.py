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


def parse_wxh(
    text: str, flag: str = "--size", *, square: bool = False, lo: int = 1, hi: int | None = None
) -> tuple[int, int]:
    """The one WxH parser of the command line: ``"640x480"`` (or ``640×480``; ``"512"`` too when
    ``square``) -> (width, height), each side in [lo, hi]. A malformed or out-of-range size raises
    :class:`irn.errors.IRNError` naming ``flag``."""
    from irn.errors import IRNError

    parts = text.strip().lower().replace("×", "x").split("x")
    if square and len(parts) == 1:
        parts = parts * 2
    example = "N or WxH (e.g. 512 or 640x480)" if square else "WxH (e.g. 640x480)"
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise IRNError(f"{flag} must look like {example}, got {text!r}")
    w, h = (int(p) for p in parts)
    if min(w, h) < lo or (hi is not None and max(w, h) > hi):
        bounds = f"between {lo} and {hi}" if hi is not None else f"at least {lo}"
        raise IRNError(f"{flag} must be {bounds} pixels per side, got {w}x{h}")
    return w, h


def add_device_argument(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--device``, the same for every command that runs a model: auto (the default) picks CUDA,
    else MPS, else the CPU (:func:`irn.zoo.resolve_device`)."""
    parser.add_argument(
        "--device", default="auto", help="cpu, cuda, cuda:N, mps or auto (default: CUDA, else MPS, else CPU)"
    )
