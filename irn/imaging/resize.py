"""MATLAB-compatible image resizing in PyTorch.

:func:`imresize` reproduces MATLAB's ``imresize`` (Image Processing Toolbox), the resize that
the super-resolution literature, and the IRN paper, use to make LR images:

* separable 1-D kernels: cubic (Keys, a = -0.5; MATLAB's default), linear (triangle),
  box, nearest, lanczos2, lanczos3;
* when downscaling with antialiasing (MATLAB's default), the kernel is stretched by
  1/scale: ``h(t) = scale * k(scale * t)`` with support ``width / scale``;
* output pixel ``x`` (1-based) samples the input at ``u = x / scale + (1 - 1/scale) / 2``;
  its taps are ``floor(u - width/2) + 0 .. ceil(width) + 1``, weighted ``h(u - tap)`` and
  normalised to sum 1;
* taps outside the image are mirrored (``[1..n, n..1]``, edge pixel repeated), and
  all-zero tap columns are dropped;
* the dimension with the smaller scale factor is resized first (height first on ties).

Each axis is one linear map, applied as a dense matrix product when the matrix is small
(fast on CPU and GPU) and as a sum of ``P`` weighted gathers otherwise (memory linear in
the image size, and used whenever float32 matmuls run at reduced precision, e.g. TF32);
both give the same numbers to rounding. Works on (..., H, W) tensors
of any floating dtype on any device, and is differentiable with respect to the input.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import lru_cache

import torch
from torch import Tensor

KernelFn = Callable[[Tensor], Tensor]

#: Largest (out x in) weight matrix applied as a dense product; larger axes use gathers.
DENSE_LIMIT = 1 << 22


def _cubic(x: Tensor) -> Tensor:
    """Keys cubic convolution kernel with a = -0.5 (MATLAB ``cubic``), support [-2, 2]."""
    a = -0.5
    ax = x.abs()
    ax2, ax3 = ax**2, ax**3
    return ((a + 2) * ax3 - (a + 3) * ax2 + 1) * (ax <= 1) + (a * ax3 - 5 * a * ax2 + 8 * a * ax - 4 * a) * (
        (ax > 1) & (ax <= 2)
    )


def _triangle(x: Tensor) -> Tensor:
    """MATLAB ``triangle`` (bilinear): max(0, 1 - |x|)."""
    return (1 - x.abs()).clamp(min=0)


def _box(x: Tensor) -> Tensor:
    """MATLAB ``box``: 1 on [-0.5, 0.5), half-open so that ties go one way."""
    return ((x >= -0.5) & (x < 0.5)).to(x.dtype)


def _lanczos(n: int) -> KernelFn:
    """MATLAB ``lanczos<n>``: sinc(x) sinc(x / n) on |x| < n."""

    def kernel(x: Tensor) -> Tensor:
        return torch.sinc(x) * torch.sinc(x / n) * (x.abs() < n)

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
def _contributions(in_len: int, out_len: int, scale: float, kernel: str, antialias: bool) -> tuple[Tensor, Tensor]:
    """Input indices (out_len, P), 0-based and mirrored, and their weights (out_len, P); float64, CPU.

    MATLAB ``imresize``'s ``contributions``: see the module docstring.
    """
    fn, width = KERNELS[kernel]
    if kernel == "nearest":
        antialias = False
    if scale < 1 and antialias:

        def h(t: Tensor) -> Tensor:
            return scale * fn(scale * t)

        width = width / scale
    else:
        h = fn
    x = torch.arange(1, out_len + 1, dtype=torch.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = torch.floor(u - width / 2)
    taps = int(math.ceil(width)) + 2
    idx = left[:, None] + torch.arange(taps, dtype=torch.float64)[None, :]
    w = h(u[:, None] - idx)
    w = w / w.sum(1, keepdim=True)
    idx = idx.long() - 1  # 0-based; mirror out-of-range taps as MATLAB's aux = [1..n, n..1]
    period = 2 * in_len
    idx = torch.remainder(idx, period)
    idx = torch.where(idx >= in_len, period - 1 - idx, idx)
    keep = (w != 0).any(0)
    return idx[:, keep].contiguous(), w[:, keep].contiguous()


def resize_matrix(in_len: int, out_len: int, scale: float, kernel: str = "cubic", antialias: bool = True) -> Tensor:
    """The (out_len, in_len) float64 matrix of one axis of :func:`imresize` (rows sum to 1)."""
    idx, w = _contributions(in_len, out_len, float(scale), kernel, antialias)
    rows = torch.arange(out_len)[:, None].expand_as(idx)
    return torch.zeros(out_len, in_len, dtype=torch.float64).index_put_((rows, idx), w, accumulate=True)


def _resize_axis(x: Tensor, dim: int, out_len: int, scale: float, kernel: str, antialias: bool) -> Tensor:
    in_len = x.shape[dim]
    # a reduced-precision float32 matmul (TF32/bf16, float32_matmul_precision != "highest")
    # would cost ~1e-3 relative error: use the exact gathers then
    exact_matmul = x.dtype != torch.float32 or torch.get_float32_matmul_precision() == "highest"
    if out_len * in_len <= DENSE_LIMIT and exact_matmul:
        m = resize_matrix(in_len, out_len, scale, kernel, antialias).to(device=x.device, dtype=x.dtype)
        return torch.matmul(m, x) if dim == -2 else torch.matmul(x, m.T)
    idx, w = _contributions(in_len, out_len, scale, kernel, antialias)
    idx = idx.to(x.device)
    w = w.to(device=x.device, dtype=x.dtype)
    shape = (out_len, 1) if dim == -2 else (out_len,)
    out = x.index_select(dim, idx[:, 0]) * w[:, 0].view(shape)
    for p in range(1, idx.shape[1]):
        out = out + x.index_select(dim, idx[:, p]) * w[:, p].view(shape)
    return out


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


def imresize(
    x: Tensor,
    scale: float | Sequence[float] | None = None,
    size: Sequence[int | None] | None = None,
    kernel: str = "cubic",
    antialias: bool = True,
) -> Tensor:
    """Resize the last two dimensions of ``x`` like MATLAB ``imresize``.

    x: (..., H, W) floating tensor, any device; values are not clamped or rounded (for
    MATLAB's uint8 output, clamp to [0, 1] and round to 1/255 steps afterwards).
    scale: a factor or (factor_h, factor_w); the output is ceil(H * scale) x ceil(W * scale).
    size: (out_h, out_w) instead of ``scale`` (factors out / in per axis); one may be None.
    kernel: cubic/bicubic (a = -0.5), linear/bilinear/triangle, box/area, nearest,
    lanczos2, lanczos3.
    antialias: stretch the kernel when downscaling (MATLAB's default; never for nearest).
    Returns (..., out_h, out_w) in the dtype and on the device of ``x``.
    """
    if kernel not in KERNELS:
        raise ValueError(f"unknown kernel {kernel!r}; choose from {', '.join(sorted(KERNELS))}")
    if x.dim() < 2:
        raise ValueError(f"expected a tensor (..., H, W), got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"imresize needs a floating-point tensor, got {x.dtype}")
    in_h, in_w = x.shape[-2:]
    if in_h == 0 or in_w == 0:
        raise ValueError(f"cannot resize an empty image of shape {tuple(x.shape)}")
    (out_h, out_w), (sh, sw) = output_size((in_h, in_w), scale, size)
    order = [(sh, -2, out_h), (sw, -1, out_w)]
    order.sort(key=lambda t: t[0])  # smaller factor first, height first on ties (MATLAB)
    for s, dim, n in order:
        if n == x.shape[dim] and s == 1:
            continue  # the identity: every kernel here is 1 at 0 and 0 at other integers
        x = _resize_axis(x, dim, n, s, kernel, antialias)
    return x
