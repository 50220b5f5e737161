"""A simple detector of crafted images (``irn craft --check``): downscales of a crafted image by
different resizers disagree strongly (:func:`check_image`)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from irn.errors import IRNError
from irn.experiments.craft.resizers import ImageLike, Size, as_uint8, psnr

#: Downscalers the detector compares with an area average taken around the same sample
#: points: Pillow nearest (samples at (i + 1/2) H/h), nearest at phase 0 (samples at i H/h,
#: what OpenCV and PyTorch "nearest" do) and Pillow bicubic (antialiased; compared with
#: Pillow's box filter).
CHECK_METHODS: tuple[str, ...] = ("nearest", "nearest-0", "bicubic")
#: Integer factors and square thumbnail sides the detector tries (those smaller than the image).
CHECK_FACTORS: tuple[int, ...] = (2, 3, 4, 5, 6, 8)
CHECK_SQUARE_SIDES: tuple[int, ...] = (32, 64, 96, 128, 160, 192, 224, 256, 299, 384, 512)
#: Default verdict threshold in dB (see the README for the calibration on photos).
CHECK_THRESHOLD_DB = 14.0


def _sample_points(n_in: int, n_out: int, phase: float) -> np.ndarray:
    """Nearest-neighbour source indices: floor((i + phase) n_in / n_out), i < n_out."""
    return np.minimum(np.floor((np.arange(n_out) + phase) * n_in / n_out).astype(np.int64), n_in - 1)


def _box_around(image: np.ndarray, rows: np.ndarray, cols: np.ndarray, size_in: Size) -> np.ndarray:
    """Mean of the (H/h x W/w) box centred on each sample pixel (clipped to the image), float64."""
    out = np.asarray(image, dtype=np.float64)
    for axis, (idx, n_in, n_out) in enumerate(((rows, size_in[0], len(rows)), (cols, size_in[1], len(cols)))):
        half = n_in / n_out / 2
        lo = np.clip(np.round(idx + 0.5 - half), 0, n_in - 1).astype(np.int64)
        hi = np.clip(np.round(idx + 0.5 + half), lo + 1, n_in).astype(np.int64)
        sums = np.cumsum(out, axis=axis)
        sums = np.concatenate([np.zeros_like(np.take(sums, [0], axis=axis)), sums], axis=axis)
        shape = [1, 1, 1]
        shape[axis] = -1
        out = (np.take(sums, hi, axis=axis) - np.take(sums, lo, axis=axis)) / (hi - lo).reshape(shape)
    return out


def _check_pair(image: np.ndarray, method: str, size: Size) -> tuple[np.ndarray, np.ndarray]:
    """(thumbnail by ``method``, its area-average reference), both (h, w, 3)."""
    h, w = size
    H, W = image.shape[:2]
    if method in ("nearest", "nearest-0"):
        phase = 0.5 if method == "nearest" else 0.0
        rows, cols = _sample_points(H, h, phase), _sample_points(W, w, phase)
        return image[rows][:, cols], _box_around(image, rows, cols, (H, W))
    pil = Image.fromarray(image, mode="RGB")
    thumb = np.asarray(pil.resize((w, h), resample=Image.Resampling.BICUBIC))
    return thumb, np.asarray(pil.resize((w, h), resample=Image.Resampling.BOX))


@dataclass
class CheckReport:
    """Verdict of :func:`check_image`: suspicious when the lowest pairwise PSNR < threshold.

    sizes: per tried size ([w, h]), the PSNR in dB of each method of :data:`CHECK_METHODS`
    against the area average.
    """

    suspicious: bool
    min_psnr: float
    worst_size: Size
    worst_method: str
    threshold: float
    sizes: list[dict[str, Any]]


def check_sizes(shape: Size) -> list[Size]:
    """The (h, w) sizes the detector tries for an image of ``shape`` (H, W), at least 8 pixels a side."""
    H, W = shape
    sizes = {(H // f, W // f) for f in CHECK_FACTORS}
    sizes |= {(s, s) for s in CHECK_SQUARE_SIDES if s < min(H, W)}
    return sorted(s for s in sizes if min(s) >= 8)


def check_image(image: ImageLike, threshold: float = CHECK_THRESHOLD_DB) -> CheckReport:
    """Flag an image whose downscales by different resizers disagree strongly.

    A crafted image hides its target in the few pixels one resizer reads, while the area
    average reads every pixel and shows the cover, so the two thumbnails differ far more
    than aliasing alone makes them differ in a photo. For each size of :func:`check_sizes`,
    the image (H, W, 3) is downscaled by every method of :data:`CHECK_METHODS` and by the
    area average; the score is the lowest PSNR against the area average over all sizes.
    A crafted image whose change is visible at full size (antialiased resizers at small
    factors) is not hidden and is not what this looks for.
    """
    img = as_uint8(image)
    if min(img.shape[:2]) < 16:
        raise IRNError(f"--check needs an image of at least 16x16 pixels, got {img.shape[1]}x{img.shape[0]}")
    rows: list[dict[str, Any]] = []
    worst = (math.inf, (0, 0), "")
    for size in check_sizes(img.shape[:2]):
        scores = {}
        for method in CHECK_METHODS:
            value = psnr(*_check_pair(img, method, size))
            scores[method] = value
            if value < worst[0]:
                worst = (value, size, method)
        rows.append({"size": [size[1], size[0]], "psnr_vs_area": scores})
    return CheckReport(
        suspicious=worst[0] < threshold,
        min_psnr=worst[0],
        worst_size=worst[1],
        worst_method=worst[2],
        threshold=threshold,
        sizes=rows,
    )
