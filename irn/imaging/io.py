"""Image files and tensors.

Tensors are float32 in [0, 1], shape (3, H, W) (or (B, 3, H, W) where noted), RGB; an
alpha channel, where one is carried, is a separate (1, H, W) tensor in [0, 1].

:func:`read_image_checked` is the robust reader the tools use: it applies EXIF orientation,
converts greyscale, palette, 16-bit, CMYK and other modes to RGB (saying so in its notes),
keeps an alpha channel apart, refuses multi-frame images and images over a pixel limit, and
turns every decoding failure (zero-byte, truncated, corrupt, not an image) into one
:class:`ImageReadError` line naming the file. :func:`read_image` is the short form for
code that only wants the RGB tensor. :func:`write_image` rounds to 8 bits and writes
atomically (temporary file, then rename).
"""

from __future__ import annotations

import io
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from irn.atomic import atomic_write
from irn.errors import IRNError
from irn.imaging.files import (  # the torch-free layer; its public names are this module's too
    ALPHA_FORMATS,
    DEFAULT_MAX_PIXELS,
    IMAGE_SUFFIXES,
    SIXTEEN_BIT_GREY,
    ImageReadError,
    ImageTooLargeError,
    image_format,
    megapixels,
    pil_from_uint8,
    read_array_checked,
    save_pil,
)

__all__ = [
    "ALPHA_FORMATS",
    "DEFAULT_MAX_PIXELS",
    "IMAGE_SUFFIXES",
    "DecodedImage",
    "ImageReadError",
    "ImageTooLargeError",
    "atomic_write",
    "check_output_path",
    "image_format",
    "jpeg_roundtrip",
    "json_safe",
    "json_text",
    "megapixels",
    "read_image",
    "read_image_checked",
    "refuse_overwriting",
    "to_pil",
    "to_tensor",
    "to_tensor_rgba",
    "to_uint8",
    "write_image",
    "write_json",
]


class DecodedImage(NamedTuple):
    """What :func:`read_image_checked` returns: rgb (3, H, W), alpha (1, H, W) or None, notes."""

    rgb: Tensor
    alpha: Tensor | None
    notes: list[str]


def to_tensor(image: Image.Image | np.ndarray) -> Tensor:
    """PIL image or uint8/uint16/float array (H, W[, C]) -> (3, H, W) float32 in [0, 1]."""
    if isinstance(image, Image.Image):
        if image.mode != "RGB":
            image = image.convert("RGB")
        arr = np.asarray(image)
    else:
        arr = np.asarray(image)
    data = _array_to_float(arr)
    if data.ndim == 2:
        data = np.repeat(data[:, :, None], 3, axis=2)
    if data.ndim != 3 or data.shape[2] not in (1, 3, 4):
        raise ValueError(f"expected an image array (H, W[, 1|3|4]), got shape {data.shape}")
    if data.shape[2] == 1:
        data = np.repeat(data, 3, axis=2)
    data = data[:, :, :3]
    return torch.from_numpy(np.ascontiguousarray(data.transpose(2, 0, 1)))


def _array_to_float(arr: np.ndarray) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0
    if arr.dtype == np.uint16:
        return arr.astype(np.float32) / 65535.0
    if arr.dtype == np.bool_:
        return arr.astype(np.float32)
    if np.issubdtype(arr.dtype, np.floating):
        if arr.size and float(np.nanmax(arr)) > 2.0:  # clearly 0-255 (or 0-65535) values, not [0, 1]
            raise ValueError(
                f"a float array must hold values in [0, 1], got up to {float(np.nanmax(arr)):g} "
                "(divide by 255, or pass a uint8 array)"
            )
        return arr.astype(np.float32)
    raise TypeError(f"unsupported array dtype {arr.dtype}")


def to_tensor_rgba(image: Image.Image | np.ndarray) -> tuple[Tensor, Tensor | None]:
    """PIL image or array (H, W[, 1|2|3|4]) -> (rgb (3, H, W), alpha (1, H, W) or None), float32 in [0, 1].

    Greyscale is repeated to three channels; 2- and 4-channel arrays and PIL modes with
    transparency (RGBA, LA, PA, P with a transparent colour) give an alpha channel.
    """
    if isinstance(image, Image.Image):
        has_alpha = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
            image.mode == "P" and "transparency" in image.info
        )
        if has_alpha:
            arr = np.asarray(image.convert("RGBA"))
            return to_tensor(arr[:, :, :3]), _alpha_tensor(arr[:, :, 3])
        if image.mode in SIXTEEN_BIT_GREY or image.mode == "I":
            return to_tensor(np.asarray(image).astype(np.float32).clip(0, 65535) / 65535.0), None
        return to_tensor(image), None
    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[2] in (2, 4):
        colour = arr[:, :, :-1]
        return to_tensor(colour if colour.shape[2] == 3 else colour[:, :, 0]), _alpha_tensor(arr[:, :, -1])
    return to_tensor(arr), None


def _alpha_tensor(alpha: np.ndarray) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(_array_to_float(alpha)))[None]


def to_uint8(x: Tensor) -> np.ndarray:
    """(C, H, W) or (1, C, H, W) in [0, 1] (or uint8 in 0-255, kept) -> uint8 array (H, W, C), rounded."""
    if x.dim() == 4:
        if x.shape[0] != 1:
            raise ValueError(f"expected one image, got a batch of {x.shape[0]}")
        x = x[0]
    if x.dtype == torch.uint8:
        return x.detach().cpu().permute(1, 2, 0).numpy()
    if not x.is_floating_point():
        raise ValueError(f"expected a float tensor in [0, 1] (or uint8), got {x.dtype}")
    arr = (x.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).cpu()
    return arr.permute(1, 2, 0).numpy()


def to_pil(x: Tensor, alpha: Tensor | None = None) -> Image.Image:
    """(3, H, W) or (1, 3, H, W) in [0, 1] -> 8-bit RGB PIL image; RGBA when ``alpha`` (1, H, W) is given.
    A 1-channel image ((1, H, W): IRN-Color's grey output) gives mode L, or LA with ``alpha``."""
    a = to_uint8(alpha.reshape(1, *alpha.shape[-2:])) if alpha is not None else None
    return pil_from_uint8(to_uint8(x), a)


def jpeg_roundtrip(x: Tensor, quality: int) -> Tensor:
    """Encode every image of ``x`` ((B, 3|1, H, W) or (3|1, H, W) in [0, 1]) as a JPEG of ``quality``
    (Pillow, 4:2:0 chroma for colour) and decode it again: what a stored JPEG holds. The one JPEG
    simulation of the package (training with a JPEG LR, ``irn eval --jpeg``, ``irn decay --jpeg``);
    same shape, dtype and device as ``x``, no gradient."""
    return lossy_roundtrip(x, "JPEG", quality)


def lossy_roundtrip(x: Tensor, fmt: str, quality: int) -> Tensor:
    """:func:`jpeg_roundtrip` for Pillow format ``fmt`` (``"JPEG"`` or ``"WEBP"``): what an image
    stored in that format at ``quality`` holds (as :func:`write_image` stores it)."""
    if not (isinstance(quality, int) and not isinstance(quality, bool) and 1 <= quality <= 100):
        raise ValueError(f"{fmt} quality must be a whole number from 1 to 100, got {quality!r}")
    batch = x if x.dim() == 4 else x[None]
    out = []
    for image in batch.detach():
        buf = io.BytesIO()
        to_pil(image).save(buf, format=fmt, quality=quality)
        buf.seek(0)
        with Image.open(buf) as im:
            arr = np.asarray(im)
        decoded = torch.from_numpy(arr.astype(np.float32) / 255)
        out.append(decoded[None] if decoded.dim() == 2 else decoded.permute(2, 0, 1))
    result = torch.stack(out).to(device=x.device, dtype=x.dtype)
    return result if x.dim() == 4 else result[0]


def read_image_checked(path: str | os.PathLike[str], max_pixels: int | None = DEFAULT_MAX_PIXELS) -> DecodedImage:
    """Read any single-frame image file robustly.

    Returns ``DecodedImage(rgb, alpha, notes)``: rgb (3, H, W) float32 in [0, 1] with EXIF
    orientation applied; alpha (1, H, W) in [0, 1] or None; notes, human-readable lines such as
    ``"converted from CMYK"``. ``max_pixels`` (width * height, None for no limit) replaces
    Pillow's own decompression-bomb limit.

    Raises :class:`ImageReadError` (one line naming the file) for a missing, zero-byte,
    truncated, corrupt, non-image or multi-frame file, and :class:`ImageTooLargeError` over the limit.
    """
    rgb, alpha, notes = read_array_checked(path, max_pixels)
    rgb_t = torch.from_numpy(rgb)  # (3, H, W), already contiguous
    alpha_t = torch.from_numpy(np.ascontiguousarray(alpha))[None] if alpha is not None else None
    return DecodedImage(rgb_t, alpha_t, notes)


def read_image(path: str | os.PathLike[str]) -> Tensor:
    """Read an image file as (3, H, W) float32 RGB in [0, 1], EXIF orientation applied.

    Any mode is converted to RGB (alpha dropped); no pixel limit. Raises :class:`ImageReadError`.
    """
    return read_image_checked(path, max_pixels=None).rgb


def check_output_path(path: str | os.PathLike[str], flag: str, *, folder: bool = False) -> Path:
    """Refuse, in one line, an output that cannot be written, before any work: a file where a
    folder is wanted (``folder=True``) or the other way round, a file among the parent folders
    (missing folders are fine: the writers make them), or a nearest existing folder in which a
    file cannot be created (tried: a hidden file is made and removed)."""
    if not str(path).strip():  # Path("") is the current folder: an unset variable must not mean "here"
        raise IRNError(f"{flag} {str(path)!r}: an empty path")
    path = Path(path)
    wanted, other = ("folder", "file") if folder else ("file", "folder")
    if path.exists() and path.is_dir() != folder:
        raise IRNError(f"{flag} {path}: is a {other}, expected a {wanted}")
    start = path if folder else path.parent
    existing = next((p for p in (start, *start.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise IRNError(f"{flag} {path}: {existing} is a file, not a folder")
    if existing is not None:
        # a real write, not os.access: root passes access() where writes still fail (a read-only
        # mount, /proc), and the answer is needed before the work, not after it
        try:
            fd, probe = tempfile.mkstemp(prefix=".irn-write-test-", dir=existing)
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            raise IRNError(f"{flag} {path}: cannot write in {existing} ({exc.strerror or exc})") from None
    return path


def refuse_overwriting(
    outputs: dict[str, str | os.PathLike[str] | None], inputs: dict[str, str | os.PathLike[str]]
) -> None:
    """One line, before any work, when an output would replace an input or another output.

    ``outputs``: flag -> path (None: not asked for); ``inputs``: what the file is ("the COVER image")
    -> path. Paths are compared after resolving links and ``..``."""
    taken: dict[Path, str] = {Path(p).resolve(): name for name, p in inputs.items()}
    for flag, p in outputs.items():
        if p is None:
            continue
        key = Path(p).resolve()
        if key in taken:
            raise IRNError(f"{flag} {p} is {taken[key]}: writing it would overwrite it")
        taken[key] = f"the {flag} output"


def write_image(x: Tensor, path: str | os.PathLike[str], *, alpha: Tensor | None = None, **save_kwargs: object) -> Path:
    """Write (3, H, W) (or a (1, H, W) grey image) in [0, 1] as an 8-bit image, atomically; the format
    follows the suffix.

    With ``alpha`` (1, H, W) in [0, 1] the file is RGBA (PNG, WebP or TIFF only).
    """
    return save_pil(to_pil(x, alpha), path, **save_kwargs)


# ----------------------------------------------------------------------------- JSON
def json_safe(value: Any) -> Any:
    """The one rule for figures in irn's JSON files: JSON has no infinity or NaN, so a non-finite
    float (the PSNR of identical images, a figure that could not be computed) becomes ``null``;
    tuples become lists, numpy and torch scalars plain numbers."""
    if isinstance(value, (np.generic, Tensor)) and getattr(value, "ndim", 0) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def json_text(doc: Any, indent: int | None = 2) -> str:
    """``doc`` as JSON text under :func:`json_safe`'s rule (strict JSON: never ``Infinity``/``NaN``)."""
    return json.dumps(json_safe(doc), indent=indent, allow_nan=False)


def write_json(path: str | os.PathLike[str], doc: Any) -> Path:
    """Write ``doc`` to ``path`` as JSON (:func:`json_text`), atomically (:func:`atomic_write`)."""
    with atomic_write(path, "w") as f:
        f.write(json_text(doc) + "\n")
    return Path(path)
