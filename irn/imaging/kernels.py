"""MATLAB ``imresize``'s arithmetic without torch: the kernels, each axis's taps and weights
(:func:`contributions`), the output size (:func:`output_size`), and a numpy resize
(:func:`imresize_array`) for the light runtime (:mod:`irn.onnx`).

:func:`irn.imaging.resize.imresize` (the torch resize every tool uses) takes its taps and weights
from :func:`contributions`, so both resizes share one definition; see that module's docstring for
the rules (Keys cubic a = -0.5, antialiased downscaling, mirrored taps, the smaller factor first).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import lru_cache

import numpy as np

KernelFn = Callable[[np.ndarray], np.ndarray]


def _cubic(x: np.ndarray) -> np.ndarray:
    """Keys cubic convolution kernel with a = -0.5 (MATLAB ``cubic``), support [-2, 2]."""
    a = -0.5
    ax = np.abs(x)
    ax2, ax3 = ax**2, ax**3
    return ((a + 2) * ax3 - (a + 3) * ax2 + 1) * (ax <= 1) + (a * ax3 - 5 * a * ax2 + 8 * a * ax - 4 * a) * (
        (ax > 1) & (ax <= 2)
    )


def _triangle(x: np.ndarray) -> np.ndarray:
    """MATLAB ``triangle`` (bilinear): max(0, 1 - |x|)."""
    return np.clip(1 - np.abs(x), 0, None)


def _box(x: np.ndarray) -> np.ndarray:
    """MATLAB ``box``: 1 on [-0.5, 0.5), half-open so that ties go one way."""
    return ((x >= -0.5) & (x < 0.5)).astype(x.dtype)


def _lanczos(n: int) -> KernelFn:
    """MATLAB ``lanczos<n>``: sinc(x) sinc(x / n) on |x| < n."""

    def kernel(x: np.ndarray) -> np.ndarray:
        return np.sinc(x) * np.sinc(x / n) * (np.abs(x) < n)

    return kernel


#: name -> (kernel function, support width). "area" is the box kernel with antialiasing
#: (pixel averaging when downscaling by an integer factor); "bilinear" is "linear".
KERNELS: dict[str, tuple[KernelFn, float]] = {
    "cubic": (_cubic, 4.0),
    "bicubic": (_cubic, 4.0),
    "linear": (_triangle, 2.0),
    "bilinear": (_triangle, 2.0),
    "triangle": (_triangle, 2.0),
    "box": (_box, 1.0),
    "area": (_box, 1.0),
    "nearest": (_box, 1.0),
    "lanczos2": (_lanczos(2), 4.0),
    "lanczos3": (_lanczos(3), 6.0),
}


@lru_cache(maxsize=64)
def contributions(
    in_len: int, out_len: int, scale: float, kernel: str, antialias: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Input indices (out_len, P), 0-based and mirrored (int64), and their weights (out_len, P) (float64).

    MATLAB ``imresize``'s ``contributions``: output pixel ``x`` (1-based) samples the input at
    ``u = x / scale + (1 - 1/scale) / 2``; its taps ``floor(u - width/2) + 0 .. ceil(width) + 1`` are
    weighted ``h(u - tap)`` (``h(t) = scale k(scale t)``, support ``width / scale`` when downscaling with
    antialiasing) and normalised to sum 1; out-of-range taps mirror (``[1..n, n..1]``); all-zero tap
    columns are dropped. The arrays are shared (cached): do not write into them.
    """
    fn, width = KERNELS[kernel]
    if kernel == "nearest":
        antialias = False
    if scale < 1 and antialias:

        def h(t: np.ndarray) -> np.ndarray:
            return scale * fn(scale * t)

        width = width / scale
    else:
        h = fn
    x = np.arange(1, out_len + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - width / 2)
    taps = int(math.ceil(width)) + 2
    idx = left[:, None] + np.arange(taps, dtype=np.float64)[None, :]
    w = h(u[:, None] - idx)
    w = w / w.sum(1, keepdims=True)
    idx = idx.astype(np.int64) - 1  # 0-based; mirror out-of-range taps as MATLAB's aux = [1..n, n..1]
    period = 2 * in_len
    idx = np.remainder(idx, period)
    idx = np.where(idx >= in_len, period - 1 - idx, idx)
    keep = (w != 0).any(0)
    idx, w = np.ascontiguousarray(idx[:, keep]), np.ascontiguousarray(w[:, keep])
    idx.flags.writeable = False
    w.flags.writeable = False
    return idx, w


def _pair(v: float | Sequence[float]) -> tuple[float, float]:
    if isinstance(v, (int, float)):
        return float(v), float(v)
    a, b = v
    return float(a), float(b)


def output_size(
    in_size: tuple[int, int], scale: float | Sequence[float] | None = None, size: Sequence[int | None] | None = None
) -> tuple[tuple[int, int], tuple[float, float]]:
    """((out_h, out_w), (scale_h, scale_w)) that :func:`imresize` uses, as MATLAB computes them.

    ``scale`` gives ``ceil(in * scale)`` (with a 1e-9 tolerance, so that 300 * (1/3) is 100
    whatever the float rounding); ``size`` gives the factors ``out / in``; one entry of ``size``
    may be None: it then follows the other's factor (MATLAB's ``[NaN w]``).
    """
    in_h, in_w = in_size
    if (scale is None) == (size is None):
        raise ValueError("give exactly one of scale or size")
    if scale is not None:
        sh, sw = _pair(scale)
        if not (sh > 0 and sw > 0 and math.isfinite(sh) and math.isfinite(sw)):
            raise ValueError(f"scale must be positive and finite, got {scale}")
        return (math.ceil(in_h * sh - 1e-9), math.ceil(in_w * sw - 1e-9)), (sh, sw)
    if len(size) != 2:  # type: ignore[arg-type]
        raise ValueError(f"size must be (out_h, out_w), got {size}")
    oh, ow = size  # type: ignore[misc]
    if oh is None and ow is None:
        raise ValueError("size needs at least one of out_h, out_w")
    if any(v is not None and int(v) <= 0 for v in (oh, ow)):
        raise ValueError(f"size must be positive, got {tuple(size)}")  # type: ignore[arg-type]
    if oh is None:
        s = int(ow) / in_w  # type: ignore[arg-type]
        return (math.ceil(in_h * s - 1e-9), int(ow)), (s, s)  # type: ignore[arg-type]
    if ow is None:
        s = int(oh) / in_h
        return (int(oh), math.ceil(in_w * s - 1e-9)), (s, s)
    return (int(oh), int(ow)), (int(oh) / in_h, int(ow) / in_w)


def imresize_array(
    a: np.ndarray,
    scale: float | Sequence[float] | None = None,
    size: Sequence[int | None] | None = None,
    kernel: str = "cubic",
    antialias: bool = True,
) -> np.ndarray:
    """:func:`irn.imaging.resize.imresize` on a numpy array (..., H, W) without torch: the same taps
    and weights, applied as gathers in float64; returns float32 (unclamped)."""
    if kernel not in KERNELS:
        raise ValueError(f"unknown kernel {kernel!r}; choose from {', '.join(sorted(KERNELS))}")
    x = np.asarray(a, dtype=np.float64)
    (out_h, out_w), (sh, sw) = output_size(x.shape[-2:], scale, size)
    order = sorted([(sh, -2, out_h), (sw, -1, out_w)], key=lambda t: t[0])
    for s, axis, n in order:
        if n == x.shape[axis] and s == 1:
            continue
        idx, w = contributions(x.shape[axis], n, s, kernel, antialias)
        shape = (n, 1) if axis == -2 else (n,)
        out = np.take(x, idx[:, 0], axis=axis) * w[:, 0].reshape(shape)
        for p in range(1, idx.shape[1]):
            out += np.take(x, idx[:, p], axis=axis) * w[:, p].reshape(shape)
        x = out
    return x.astype(np.float32)
