"""MATLAB-compatible image resizing in PyTorch.

:func:`imresize` reproduces MATLAB's ``imresize``: separable kernels (cubic with
a = -0.5 by default), the kernel widened by 1/scale when downscaling with antialiasing,
sample positions ``u = x/scale + (1 - 1/scale)/2`` (1-based), and symmetric (mirror)
boundary handling. The dimension with the smaller scale factor is resized first, as
MATLAB does. Works on (..., H, W) tensors of any float dtype, on any device, and is
differentiable (a weighted gather along each axis).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import lru_cache

import torch
from torch import Tensor

KernelFn = Callable[[Tensor], Tensor]


def _cubic(x: Tensor) -> Tensor:
    a = -0.5
    ax = x.abs()
    ax2, ax3 = ax**2, ax**3
    return ((a + 2) * ax3 - (a + 3) * ax2 + 1) * (ax <= 1) + (
        a * ax3 - 5 * a * ax2 + 8 * a * ax - 4 * a
    ) * ((ax > 1) & (ax <= 2))


def _triangle(x: Tensor) -> Tensor:
    return (1 - x.abs()).clamp(min=0)


def _box(x: Tensor) -> Tensor:
    return ((x >= -0.5) & (x < 0.5)).to(x.dtype)


def _sinc(x: Tensor) -> Tensor:
    return torch.sinc(x)


def _lanczos(n: int) -> KernelFn:
    def k(x: Tensor) -> Tensor:
        return _sinc(x) * _sinc(x / n) * (x.abs() < n)

    return k


#: name -> (kernel function, support width). "area" is MATLAB's box with antialiasing.
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
def _contributions(in_len: int, out_len: int, scale: float, kernel: str, antialias: bool) -> tuple[Tensor, Tensor]:
    """Indices (out_len, P) into the input and their weights (out_len, P), float64 on CPU."""
    fn, width = KERNELS[kernel]
    if kernel == "nearest":
        antialias = False
    if scale < 1 and antialias:
        h: KernelFn = lambda t: scale * fn(scale * t)  # noqa: E731
        width = width / scale
    else:
        h = fn
    x = torch.arange(1, out_len + 1, dtype=torch.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = torch.floor(u - width / 2)
    p = int(math.ceil(width)) + 2
    idx = left[:, None] + torch.arange(p, dtype=torch.float64)[None, :]
    w = h(u[:, None] - idx)
    w = w / w.sum(1, keepdim=True)
    # MATLAB mirrors out-of-range indices: aux = [1..n, n..1]
    idx = idx.long() - 1
    period = 2 * in_len
    idx = torch.remainder(idx, period)
    idx = torch.where(idx >= in_len, period - 1 - idx, idx)
    keep = (w != 0).any(0)
    return idx[:, keep].contiguous(), w[:, keep].contiguous()


def _resize_axis(x: Tensor, dim: int, out_len: int, scale: float, kernel: str, antialias: bool) -> Tensor:
    idx, w = _contributions(x.shape[dim], out_len, scale, kernel, antialias)
    idx = idx.to(x.device)
    w = w.to(device=x.device, dtype=x.dtype)
    x = x.movedim(dim, -1)
    gathered = x[..., idx]  # (..., out, P)
    out = (gathered * w).sum(-1)
    return out.movedim(-1, dim)


def _pair(v: float | Sequence[float]) -> tuple[float, float]:
    if isinstance(v, (int, float)):
        return float(v), float(v)
    a, b = v
    return float(a), float(b)


def imresize(
    x: Tensor,
    scale: float | Sequence[float] | None = None,
    size: Sequence[int] | None = None,
    kernel: str = "cubic",
    antialias: bool = True,
) -> Tensor:
    """Resize the last two dimensions of ``x`` like MATLAB ``imresize``.

    x: (..., H, W) float tensor (values are not clamped or rounded: do that for uint8 output).
    scale: a factor or (factor_h, factor_w); output is ceil(H * scale) x ceil(W * scale).
    size: (out_h, out_w) instead of ``scale``; the factors are then out/in per axis.
    kernel: cubic (a = -0.5), linear/bilinear, box/area, nearest, lanczos2, lanczos3.
    antialias: widen the kernel when downscaling (MATLAB's default; ignored for nearest).
    """
    if kernel not in KERNELS:
        raise ValueError(f"unknown kernel {kernel!r}; choose from {', '.join(sorted(KERNELS))}")
    if (scale is None) == (size is None):
        raise ValueError("give exactly one of scale or size")
    if x.dim() < 2:
        raise ValueError(f"expected a tensor (..., H, W), got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"imresize needs a floating-point tensor, got {x.dtype}")
    in_h, in_w = x.shape[-2:]
    if scale is not None:
        sh, sw = _pair(scale)
        if sh <= 0 or sw <= 0:
            raise ValueError(f"scale must be positive, got {scale}")
        out_h, out_w = math.ceil(in_h * sh - 1e-9), math.ceil(in_w * sw - 1e-9)
    else:
        out_h, out_w = (int(v) for v in size)  # type: ignore[union-attr]
        if out_h <= 0 or out_w <= 0:
            raise ValueError(f"size must be positive, got {tuple(size)}")  # type: ignore[arg-type]
        sh, sw = out_h / in_h, out_w / in_w
    order = [(sh, -2, out_h), (sw, -1, out_w)]
    order.sort(key=lambda t: t[0])  # smaller factor first, height first on ties (MATLAB)
    for s, dim, n in order:
        if n == x.shape[dim] and s == 1:
            continue
        x = _resize_axis(x, dim, n, s, kernel, antialias)
    return x


def bicubic_downscale(x: Tensor, scale: int) -> Tensor:
    """MATLAB bicubic (antialiased) by an integer factor: (..., H, W) -> (..., ceil(H/s), ceil(W/s))."""
    return imresize(x, scale=1 / scale)


def bicubic_upscale(x: Tensor, scale: int) -> Tensor:
    """MATLAB bicubic upscaling by an integer factor: (..., h, w) -> (..., s h, s w)."""
    return imresize(x, scale=scale)
