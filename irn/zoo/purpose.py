"""What a model's LR is made to be stored as: losslessly (PNG), or in a lossy format (JPEG, WebP).

:func:`lr_formats` is the one rule. ``irn rescale`` follows it (no lossy warning for a format the model is
made for, a note when such a model writes a PNG LR), and ``irn export --format onnx`` writes its answer
into ``model.json`` for the torch-free runtime. The first of these that applies decides:

1. the model's purpose, ``metadata["purpose"]`` (a :data:`irn.zoo.catalogue.Purpose`): the catalogue
   entry's when the model was loaded by name (:func:`irn.zoo.checkpoint.load` attaches it, and
   ``irn export NAME`` writes it into the file it makes): ``"JPEG"`` -> JPEG, ``"WebP"`` -> WebP,
   ``"lossless"`` and ``"colour"`` -> none;
2. the card of a model trained for a JPEG LR (``config.loss.jpeg_quality``, e.g. the shipped
   ``x2-jpeg``), or a model that carries a compression restoration module -> JPEG;
3. the architecture (:attr:`irn.zoo.architecture.Architecture.lr_formats`): a SAIN file is
   compression-aware -> JPEG and WebP (the official x2 JPEG and x2 WebP files have the same keys and
   shapes, so a file alone cannot say which); every other architecture -> none.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from irn.zoo.catalogue import CATALOGUE
from irn.zoo.checkpoint import restorer_of
from irn.zoo.errors import CheckpointError
from irn.zoo.registry import architecture_of

#: the lossy formats (Pillow's names) an LR can be stored in, and how messages name them
FORMAT_NAMES: dict[str, str] = {"JPEG": "JPEG", "WEBP": "WebP"}
#: the lossy LR formats of each catalogue purpose (irn.zoo.catalogue.Purpose)
PURPOSE_FORMATS: dict[str, tuple[str, ...]] = {"lossless": (), "colour": (), "JPEG": ("JPEG",), "WebP": ("WEBP",)}
#: the --format value of each lossy format (irn rescale)
SUFFIXES: dict[str, str] = {"JPEG": "jpg", "WEBP": "webp"}


def trained_for_jpeg(metadata: Mapping[str, Any]) -> bool:
    """Whether a model's card says it was trained for an LR stored as a JPEG (``config.loss.jpeg_quality``)."""
    config = metadata.get("config")
    loss = config.get("loss") if isinstance(config, Mapping) else None
    return isinstance(loss, Mapping) and loss.get("jpeg_quality") is not None


def lr_formats(model: object) -> tuple[str, ...]:
    """The lossy formats (Pillow's names: ``"JPEG"``, ``"WEBP"``) ``model``'s LR is made to be stored in;
    ``()`` for a model whose LR is meant to stay lossless. The rule is the module docstring's."""
    metadata = getattr(model, "metadata", None) or {}
    purpose = metadata.get("purpose")
    if purpose in PURPOSE_FORMATS:
        return PURPOSE_FORMATS[purpose]
    if restorer_of(model) is not None or trained_for_jpeg(metadata):
        return ("JPEG",)
    try:
        return tuple(architecture_of(model).lr_formats)  # type: ignore[arg-type]
    except CheckpointError:  # a module of no registered architecture: nothing known of it
        return ()


def better_model(name: str, fmt: str, quality: int) -> tuple[str, int] | None:
    """``(other, threshold)`` when the catalogue model ``other`` was measured to reconstruct better than
    the model named ``name`` from an LR stored as ``fmt`` (Pillow's name) at ``quality``: the lossless
    model from an entry's ``handover`` quality up, the lossy one below it; else None."""
    for entry in CATALOGUE:
        if entry.handover is None or fmt not in PURPOSE_FORMATS[entry.purpose]:
            continue
        threshold, lossless = entry.handover
        if name == entry.name and quality >= threshold:
            return lossless, threshold
        if name == lossless and quality < threshold:
            return entry.name, threshold
    return None


def describe_formats(formats: Sequence[str]) -> str:
    """``("JPEG",)`` -> ``"a JPEG LR"``; ``("JPEG", "WEBP")`` -> ``"a JPEG or WebP LR"``."""
    return f"a {' or '.join(FORMAT_NAMES.get(f, f) for f in formats)} LR"
