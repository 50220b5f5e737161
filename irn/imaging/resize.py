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

from collections.abc import Sequence
from functools import lru_cache

import torch
from torch import Tensor

from irn.imaging.kernels import KERNELS, contributions, output_size

__all__ = ["DENSE_LIMIT", "KERNELS", "imresize", "output_size", "resize_matrix"]

#: Largest (out x in) weight matrix applied as a dense product; larger axes use gathers.
DENSE_LIMIT = 1 << 22


@lru_cache(maxsize=64)
def _contributions(in_len: int, out_len: int, scale: float, kernel: str, antialias: bool) -> tuple[Tensor, Tensor]:
    """:func:`irn.imaging.kernels.contributions` as tensors: indices (out_len, P) int64, weights float64 (CPU)."""
    idx, w = contributions(in_len, out_len, scale, kernel, antialias)
    return torch.from_numpy(idx.copy()), torch.from_numpy(w.copy())


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
