"""Small image files of every awkward kind, written on the fly for the I/O and CLI tests."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def rgb_array(h: int = 14, w: int = 10, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def write_png16_rgb(path: Path, arr: np.ndarray) -> Path:
    """A 16-bit-per-channel RGB PNG (Pillow cannot write one), arr (H, W, 3) uint16."""
    h, w, _ = arr.shape
    raw = b"".join(b"\x00" + arr[y].astype(">u2").tobytes() for y in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    )
    return path


def write_png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG that claims ``width`` x ``height`` but holds no pixel data (a decompression-bomb probe)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b""))
    return path


def write_exif_rotated(path: Path, arr: np.ndarray, orientation: int = 6) -> Path:
    """A PNG storing ``arr`` unrotated, with an EXIF orientation tag saying how to display it."""
    im = Image.fromarray(arr)
    exif = Image.Exif()
    exif[0x0112] = orientation
    im.save(path, exif=exif.tobytes())
    return path


def write_animated_gif(path: Path, frames: int = 3) -> Path:
    images = [Image.fromarray(rgb_array(8, 8, seed=i)) for i in range(frames)]
    images[0].save(path, save_all=True, append_images=images[1:], duration=50, loop=0)
    return path


def write_multipage_tiff(path: Path, pages: int = 2) -> Path:
    images = [Image.fromarray(rgb_array(8, 8, seed=i)) for i in range(pages)]
    images[0].save(path, save_all=True, append_images=images[1:])
    return path


def write_truncated(path: Path, fmt: str = "PNG") -> Path:
    """A real image file cut to 60% of its bytes."""
    full = path.with_name("full_" + path.name)
    Image.fromarray(rgb_array(64, 64)).save(full, format=fmt)
    data = full.read_bytes()
    full.unlink()
    path.write_bytes(data[: int(len(data) * 0.6)])
    return path


def write_all_modes(folder: Path) -> dict[str, Path]:
    """One file per input kind the reader converts; keys name the kind."""
    folder.mkdir(parents=True, exist_ok=True)
    arr = rgb_array()
    files = {}
    Image.fromarray(arr).save(files.setdefault("rgb", folder / "rgb.png"))
    rgba = np.concatenate([arr, np.linspace(0, 255, arr.shape[0] * arr.shape[1]).reshape(*arr.shape[:2], 1)], 2)
    Image.fromarray(rgba.astype(np.uint8)).save(files.setdefault("rgba", folder / "rgba.png"))
    Image.fromarray(arr[:, :, 0]).save(files.setdefault("grey", folder / "grey.png"))
    Image.fromarray(arr).convert("P", palette=Image.Palette.ADAPTIVE, colors=16).save(
        files.setdefault("palette", folder / "palette.png")
    )
    Image.fromarray(arr).convert("CMYK").save(files.setdefault("cmyk", folder / "cmyk.jpg"), quality=95)
    grey16 = (arr[:, :, 0].astype(np.uint16) * 257 + 3).astype(np.uint16)
    Image.fromarray(grey16).save(files.setdefault("grey16", folder / "grey16.png"))
    write_png16_rgb(files.setdefault("rgb16", folder / "rgb16.png"), arr.astype(np.uint16) * 257)
    write_exif_rotated(files.setdefault("exif", folder / "exif.png"), arr, orientation=6)
    return files
