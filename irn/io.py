"""Image files and tensors.

Tensors are float32 in [0, 1], shape (3, H, W) (or (B, 3, H, W) where noted), RGB.
:func:`read_image` applies EXIF orientation and converts any mode to RGB;
:func:`write_image` rounds to 8 bits and writes atomically (temporary file, then rename).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps
from torch import Tensor

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}


def to_tensor(image: Image.Image | np.ndarray) -> Tensor:
    """PIL image or uint8/uint16/float array (H, W[, C]) -> (3, H, W) float32 in [0, 1]."""
    if isinstance(image, Image.Image):
        if image.mode != "RGB":
            image = image.convert("RGB")
        arr = np.asarray(image)
    else:
        arr = np.asarray(image)
    if arr.dtype == np.uint8:
        data = arr.astype(np.float32) / 255.0
    elif arr.dtype == np.uint16:
        data = arr.astype(np.float32) / 65535.0
    elif np.issubdtype(arr.dtype, np.floating):
        data = arr.astype(np.float32)
    else:
        raise TypeError(f"unsupported array dtype {arr.dtype}")
    if data.ndim == 2:
        data = np.repeat(data[:, :, None], 3, axis=2)
    if data.ndim != 3 or data.shape[2] not in (1, 3, 4):
        raise ValueError(f"expected an image array (H, W[, 1|3|4]), got shape {data.shape}")
    if data.shape[2] == 1:
        data = np.repeat(data, 3, axis=2)
    data = data[:, :, :3]
    return torch.from_numpy(np.ascontiguousarray(data.transpose(2, 0, 1)))


def to_uint8(x: Tensor) -> np.ndarray:
    """(3, H, W) or (1, 3, H, W) in [0, 1] -> uint8 array (H, W, 3), rounded."""
    if x.dim() == 4:
        if x.shape[0] != 1:
            raise ValueError(f"expected one image, got a batch of {x.shape[0]}")
        x = x[0]
    arr = (x.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).cpu()
    return arr.permute(1, 2, 0).numpy()


def to_pil(x: Tensor) -> Image.Image:
    """(3, H, W) or (1, 3, H, W) in [0, 1] -> 8-bit RGB PIL image."""
    return Image.fromarray(to_uint8(x), mode="RGB")


def read_image(path: str | os.PathLike[str]) -> Tensor:
    """Read an image file as (3, H, W) float32 RGB in [0, 1], EXIF orientation applied."""
    with Image.open(path) as im:
        im.load()
        im = ImageOps.exif_transpose(im)
        if im.mode in ("I;16", "I;16B", "I;16L", "I"):
            arr = np.asarray(im).astype(np.float32) / 65535.0
            return to_tensor(arr)
        return to_tensor(im.convert("RGB"))


def write_image(x: Tensor, path: str | os.PathLike[str], **save_kwargs: object) -> Path:
    """Write (3, H, W) in [0, 1] as an 8-bit image, atomically; the format follows the suffix."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix + ".tmp", dir=path.parent)
    os.close(fd)
    try:
        fmt = Image.registered_extensions().get(path.suffix.lower())
        to_pil(x).save(tmp, format=fmt, **save_kwargs)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
