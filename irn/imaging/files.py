"""Image files without torch: the one checked reader's decoding (:func:`read_array_checked`), the
8-bit rounding rule (:func:`array_to_uint8`) and the atomic image writer (:func:`save_pil`).

:mod:`irn.imaging.io` gives the tools tensors on top of these; the light ONNX runtime
(:mod:`irn.onnx`) uses them as they are (numpy arrays), so both read and write images the same way.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from irn.atomic import atomic_write
from irn.errors import IRNError

IMAGE_SUFFIXES = {
    ".png",
    ".jpg",
    ".jpeg",
    ".bmp",
    ".tif",
    ".tiff",
    ".webp",
    ".ppm",
    ".pgm",
    ".pnm",
    ".gif",
}

#: Default pixel limit of the tools (width * height), 50 megapixels.
DEFAULT_MAX_PIXELS = 50_000_000

#: Formats that can store an alpha channel (by Pillow format name).
ALPHA_FORMATS = {"PNG", "WEBP", "TIFF"}

SIXTEEN_BIT_GREY = ("I;16", "I;16L", "I;16B", "I;16N")
#: the reader's notes for a plain grey file (no alpha, no clipping): what ``irn color up`` takes as it is
NOTE_GREY = "converted from greyscale"
NOTE_BLACK_WHITE = "converted from 1-bit black and white"
NOTE_GREY_16 = "converted from 16-bit greyscale"
NOTE_GREY_32 = "converted from 32-bit integer greyscale"
GREY_NOTES = frozenset({NOTE_GREY, NOTE_BLACK_WHITE, NOTE_GREY_16, NOTE_GREY_32})
_PILLOW_LIMIT_LOCK = threading.RLock()


class ImageReadError(IRNError):
    """A file that cannot be read as an image; the message names the file and the problem."""


class ImageTooLargeError(ImageReadError):
    """An image with more pixels than the limit; ``width``, ``height`` and ``limit`` say by how much."""

    def __init__(self, path: str | os.PathLike[str], width: int, height: int, limit: int) -> None:
        self.path, self.width, self.height, self.limit = str(path), width, height, limit
        super().__init__(
            f"{path}: {width}x{height} = {megapixels(width * height)} is over the limit of {megapixels(limit)}"
        )


def megapixels(count: int) -> str:
    """A pixel count for messages: ``"64 MP"``, ``"0.12 MP"``, or ``"600 pixels"`` below 0.1 MP."""
    return f"{count / 1e6:.3g} MP" if count >= 100_000 else f"{count:,} pixels"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@contextmanager
def _pillow_limit(max_pixels: int | None) -> Iterator[None]:
    """Make ``max_pixels`` (None: no limit) Pillow's decompression-bomb limit while decoding.

    When ours is the stricter limit it is checked right after opening, before any pixel is
    decoded, so Pillow's global stays untouched (only its warning is silenced). Otherwise the
    global is raised under a lock for the duration and restored afterwards.
    """
    current = Image.MAX_IMAGE_PIXELS
    if max_pixels is not None and current is not None and max_pixels <= current:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            yield
        return
    with _PILLOW_LIMIT_LOCK:
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = max_pixels
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                yield
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def _size_without_limit(path: Path) -> tuple[int, int]:
    with _pillow_limit(None), Image.open(path) as probe:
        return probe.size


def _png_bit_depth(path: Path) -> int | None:
    with open(path, "rb") as f:
        head = f.read(25)
    if len(head) == 25 and head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR":
        return head[24]
    return None


def _planar(hwc: np.ndarray, divisor: float) -> np.ndarray:
    """(H, W, C) numbers -> (3, H, W) float32, C-contiguous, divided by ``divisor``, in one pass
    (C = 1 is repeated to 3). Converting, dividing and transposing in one ufunc keeps a large image's
    peak at its result plus the 8-bit input, not three float copies."""
    out = np.empty((3, *hwc.shape[:2]), dtype=np.float32)
    np.divide(hwc.transpose(2, 0, 1), np.float32(divisor), out=out, casting="unsafe")
    return out


def _unit_alpha(plane: np.ndarray) -> np.ndarray:
    """8-bit alpha (H, W) -> float32 in [0, 1]."""
    return plane.astype(np.float32) / np.float32(255)


def _convert(im: Image.Image, sixteen_bit_png: bool) -> tuple[np.ndarray, np.ndarray | None, list[str]]:
    """Decoded PIL image -> (rgb (3, H, W) float32 in [0, 1], alpha (H, W) float32 or None, notes)."""
    mode = im.mode
    notes: list[str] = []
    alpha: np.ndarray | None = None
    if mode in ("RGBa", "La"):
        im = im.convert("RGBA")
        mode = "RGBA"
    if mode == "RGB":
        if sixteen_bit_png:
            notes.append("converted from 16-bit colour (Pillow decodes it at 8 bits per channel)")
        rgb = _planar(np.asarray(im), 255)
    elif mode == "RGBA":
        if sixteen_bit_png:
            notes.append("converted from 16-bit colour (Pillow decodes it at 8 bits per channel)")
        arr = np.asarray(im)
        rgb, alpha = _planar(arr[:, :, :3], 255), _unit_alpha(arr[:, :, 3])
    elif mode in ("L", "1"):
        notes.append(NOTE_GREY if mode == "L" else NOTE_BLACK_WHITE)
        rgb = _planar(np.asarray(im.convert("L"))[:, :, None], 255)
    elif mode == "LA":
        notes.append("converted from greyscale with alpha")
        arr = np.asarray(im)
        rgb, alpha = _planar(arr[:, :, :1], 255), _unit_alpha(arr[:, :, 1])
    elif mode in ("P", "PA"):
        transparent = mode == "PA" or "transparency" in im.info
        notes.append("converted from palette" + (" with transparency" if transparent else ""))
        arr = np.asarray(im.convert("RGBA" if transparent else "RGB"))
        rgb = _planar(arr[:, :, :3], 255)
        alpha = _unit_alpha(arr[:, :, 3]) if transparent else None
    elif mode in SIXTEEN_BIT_GREY or mode == "I":
        notes.append(NOTE_GREY_16 if mode != "I" else NOTE_GREY_32)
        rgb = _planar(np.asarray(im).astype(np.float32).clip(0, 65535)[:, :, None], 65535)
    elif mode == "F":
        notes.append("converted from 32-bit float greyscale (clipped to [0, 1])")
        rgb = _planar(np.asarray(im).astype(np.float32).clip(0, 1)[:, :, None], 1)
    else:
        notes.append(f"converted from {mode}")
        rgb = _planar(np.asarray(im.convert("RGB")), 255)
    return rgb, alpha, notes


def read_array_checked(
    path: str | os.PathLike[str], max_pixels: int | None = DEFAULT_MAX_PIXELS
) -> tuple[np.ndarray, np.ndarray | None, list[str]]:
    """:func:`irn.imaging.io.read_image_checked` as numpy arrays: rgb (3, H, W) float32 in [0, 1],
    alpha (H, W) float32 or None, notes. Same checks, same errors."""
    path = Path(path)
    if not path.exists():
        raise ImageReadError(f"{path}: no such file")
    if path.is_dir():
        raise ImageReadError(f"{path}: is a folder, not an image file")
    if path.stat().st_size == 0:
        raise ImageReadError(f"{path}: empty file (0 bytes)")
    with _pillow_limit(max_pixels):
        return _decode(path, max_pixels)


def _decode(path: Path, max_pixels: int | None) -> tuple[np.ndarray, np.ndarray | None, list[str]]:
    """The body of :func:`read_image_checked`, under the Pillow limit: (rgb (3, H, W), alpha (H, W) | None, notes)."""
    try:
        im = Image.open(path)
    except Image.DecompressionBombError:
        # Pillow refused before we could look at the size; re-read the size without its check.
        width, height = _size_without_limit(path)
        raise ImageTooLargeError(path, width, height, int(max_pixels or 0)) from None
    except PermissionError:
        raise ImageReadError(f"{path}: cannot read the file (permission denied)") from None
    except UnidentifiedImageError:
        raise ImageReadError(f"{path}: not an image (unrecognised file format)") from None
    except Exception as exc:  # noqa: BLE001 - any decoder failure is a bad file
        raise ImageReadError(f"{path}: corrupt image ({_first_line(exc)})") from None
    with im:
        width, height = im.size
        if max_pixels is not None and width * height > max_pixels:
            raise ImageTooLargeError(path, width, height, max_pixels)
        frames = int(getattr(im, "n_frames", 1) or 1)
        notes: list[str] = []
        if frames > 1:
            if im.format != "MPO":
                raise ImageReadError(
                    f"{path}: multi-frame image ({frames} frames, {im.format}); "
                    "IRN rescales single images, extract one frame first"
                )
            notes.append(f"MPO file with {frames} frames: using the primary image")
        try:
            im.load()
            orientation = int(im.getexif().get(0x0112, 1) or 1)
            # exif_transpose copies even when there is nothing to do: a large image's peak memory
            oriented = ImageOps.exif_transpose(im) if orientation != 1 else im
            rgb, alpha, convert_notes = _convert(oriented, im.format == "PNG" and _png_bit_depth(path) == 16)
        except Image.DecompressionBombError:
            raise ImageTooLargeError(path, width, height, int(max_pixels or 0)) from None
        except Exception as exc:  # noqa: BLE001 - truncated data, broken streams, bad chunks
            raise ImageReadError(f"{path}: corrupt or truncated image ({_first_line(exc)})") from None
    if orientation != 1:
        notes.append(f"EXIF orientation {orientation} applied")
    return rgb, alpha, notes + convert_notes


def is_jpeg_file(path: str | os.PathLike[str]) -> bool:
    """Whether the file holds a JPEG (its first bytes, whatever its name: ``.jfif``, or a JPEG
    named ``.png``); False for an unreadable file."""
    try:
        with open(path, "rb") as f:
            return f.read(3) == b"\xff\xd8\xff"
    except OSError:
        return False


def image_format(path: str | os.PathLike[str]) -> str:
    """Pillow's format name for a file suffix (``".png"`` -> ``"PNG"``); ValueError if unknown."""
    suffix = Path(path).suffix.lower()
    fmt = Image.registered_extensions().get(suffix)
    if fmt is None:
        raise ValueError(f"unknown image suffix {suffix!r} for {path}")
    return fmt


def array_to_uint8(x: np.ndarray) -> np.ndarray:
    """(C, H, W) float in [0, 1] -> uint8 (H, W, C): clamped, times 255, rounded half to even (the rule
    of :func:`irn.imaging.io.to_uint8` for tensors)."""
    if x.ndim != 3:
        raise ValueError(f"expected an image array (C, H, W), got shape {x.shape}")
    return np.round(np.clip(x.astype(np.float32), 0, 1) * np.float32(255)).astype(np.uint8).transpose(1, 2, 0)


def pil_from_uint8(rgb: np.ndarray, alpha: np.ndarray | None = None) -> Image.Image:
    """8-bit (H, W, 1|3) and alpha (H, W, 1) -> a PIL image: L, RGB, or LA / RGBA with alpha."""
    grey = rgb.shape[2] == 1
    if rgb.shape[2] not in (1, 3):
        raise ValueError(f"expected 1 or 3 channels, got {rgb.shape[2]}")
    if alpha is None:
        return Image.fromarray(rgb[:, :, 0], mode="L") if grey else Image.fromarray(rgb, mode="RGB")
    if alpha.shape[:2] != rgb.shape[:2]:
        raise ValueError(f"alpha is {alpha.shape[1]}x{alpha.shape[0]}, image is {rgb.shape[1]}x{rgb.shape[0]}")
    return Image.fromarray(np.concatenate([rgb, alpha], axis=2), mode="LA" if grey else "RGBA")


def save_pil(image: Image.Image, path: str | os.PathLike[str], **save_kwargs: object) -> Path:
    """Write a PIL image atomically in the format its suffix names (with alpha: PNG, WebP or TIFF only)."""
    path = Path(path)
    fmt = image_format(path)
    if image.mode in ("RGBA", "LA") and fmt not in ALPHA_FORMATS:
        raise ValueError(f"{path}: {fmt} cannot store an alpha channel")
    with atomic_write(path) as f:
        image.save(f, format=fmt, **save_kwargs)
    return path
