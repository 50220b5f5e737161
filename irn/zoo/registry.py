"""The registry of architectures: the one list (:data:`ARCHITECTURES`) that :func:`irn.load`,
:func:`irn.save`, ``irn export``, ``irn models --architectures`` and the docs read.

Each entry is the ``ARCHITECTURE`` of one module under :mod:`irn.zoo.archs`. An official state dict
is claimed by exactly one entry (:func:`detect`); our files name theirs (:func:`get_architecture`);
a module is owned by exactly one (:func:`architecture_of`). Two entries claiming the same state dict
or module is a bug in a detector, reported as such. Adding an architecture: docs/architecture.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import nn

from irn.zoo.architecture import Architecture
from irn.zoo.archs import color, conv, crm, irn, sain, tirn
from irn.zoo.errors import CheckpointError

#: every architecture irn loads, in the order ``irn models --architectures`` lists them
ARCHITECTURES: tuple[Architecture, ...] = (
    irn.ARCHITECTURE,
    conv.ARCHITECTURE,
    color.ARCHITECTURE,
    crm.ARCHITECTURE,
    sain.ARCHITECTURE,
    tirn.ARCHITECTURE,
)


class AmbiguousArchitecture(RuntimeError):
    """Two registry entries claim the same state dict or module: a bug in their detectors."""


def _check_names(entries: tuple[Architecture, ...]) -> dict[str, Architecture]:
    by_name: dict[str, Architecture] = {}
    for entry in entries:
        if entry.name in by_name:
            raise AmbiguousArchitecture(f"two architectures are named {entry.name!r}")
        by_name[entry.name] = entry
    return by_name


_BY_NAME = _check_names(ARCHITECTURES)


def names() -> list[str]:
    """The registered architecture names."""
    return [a.name for a in ARCHITECTURES]


def get_architecture(name: str, path: Path | str | None = None) -> Architecture:
    """The entry called ``name`` (the ``"arch"`` field of our files); an unknown one is a
    :class:`CheckpointError` naming ``path`` and the known names."""
    entry = _BY_NAME.get(name)
    if entry is None:
        where = f"{path}: " if path is not None else ""
        raise CheckpointError(
            f"{where}architecture {name!r} is unknown to this irn (it knows {', '.join(names())}); "
            "a newer irn may read it: upgrade irn"
        )
    return entry


def claimants(state: Mapping[str, Any]) -> list[Architecture]:
    """Every entry that claims an official state dict (prefix already stripped): one, or none."""
    return [a for a in ARCHITECTURES if a.claims(state)]


def detect(state: Mapping[str, Any], path: Path | str) -> Architecture:
    """The one entry that claims ``state``; none is a :class:`CheckpointError` naming ``path`` and the
    keys each architecture is known by."""
    found = claimants(state)
    if len(found) > 1:
        raise AmbiguousArchitecture(
            f"{path}: claimed by {', '.join(a.name for a in found)}: a bug in their detectors (irn.zoo.archs)"
        )
    if not found:
        known = "; ".join(f"{a.name}: {a.keys}" for a in ARCHITECTURES)
        raise CheckpointError(
            f"{path}: not an IRN checkpoint (no irn metadata and no official keys of a known architecture: {known})"
        )
    return found[0]


def architecture_of(module: nn.Module) -> Architecture:
    """The one entry that owns ``module`` (what :func:`irn.save` writes as its ``"arch"``)."""
    found = [a for a in ARCHITECTURES if a.owns(module)]
    if len(found) > 1:
        raise AmbiguousArchitecture(f"{type(module).__name__} is owned by {', '.join(a.name for a in found)}")
    if not found:
        raise CheckpointError(
            f"a {type(module).__name__} is none of the architectures irn saves ({', '.join(names())})"
        )
    return found[0]
