"""Images whose thumbnail shows something else ("image-scaling attacks"), crafted fast.

Given a COVER image A (H x W) and a TARGET B (h x w), find x close to A whose downscale
D(x) by a named resizer equals B. Every resizer that real software uses for a fixed pair
of sizes is *linear and separable*: per channel, D(X) = Dh X Dw^T with a row matrix
Dh (h x H) and a column matrix Dw (w x W). :func:`resize_matrices` extracts both matrices
from the library itself (by resizing identity images in floating point), so they are the
library's own weights, not a re-derivation.

The smallest change that meets the target is the pseudo-inverse step

    x* = A + D^+ (B - D A),   D^+ = Dh^+ (x) Dw^+,

and ``PSNR(x*, A)`` bounds what any method can reach (the "least-change bound"). x* may
leave [0, 255]; :func:`solve_boxed` finds the exact projection of A onto
{x : D x = B} intersected with the box [0, 255]^n by a semismooth Newton method on the
dual: x(lam) = clip(A + D^T lam), Newton steps (D S D^T) dlam = B - D x(lam) with S the
unclipped pixels, solved by conjugate gradients preconditioned with the separable
(Dh Dh^T)^-1 (x) (Dw Dw^T)^-1. Nothing is ever formed at full (HW x hw) size.

For an IRN model's downscale (not linear), :func:`craft_irn` uses the Haar low-pass
(an s x s box average, the LR branch of the paper's Eq. 1 before the coupling blocks)
as the linear part, re-estimates the model's deviation from it with one forward pass per
round, and finishes with Adam steps on ``mse(x, A) + weight * mse(LR(x), B)``.
:func:`craft_reverse` does the opposite direction: an LR image that looks like COVER
whose IRN upscale (z = 0) looks like TARGET. :func:`check_image` is a simple detector:
downscales of a crafted image by different resizers disagree strongly.

Images are uint8 arrays (H, W, 3) (or (3, H, W) float tensors in [0, 1], converted).
PSNR is on the 0-255 scale over all channels.
"""

from __future__ import annotations

import io
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from PIL import Image
from torch import Tensor

from irn.errors import IRNError
from irn.imaging.resize import imresize
from irn.pipeline import model_device

#: Linear resizers: name -> (library, what is called).
LINEAR_RESIZERS: dict[str, tuple[str, str]] = {
    "pil-nearest": ("Pillow", "Image.resize(size, Image.NEAREST)"),
    "pil-bilinear": ("Pillow", "Image.resize(size, Image.BILINEAR)"),
    "pil-bicubic": ("Pillow", "Image.resize(size, Image.BICUBIC)"),
    "pil-lanczos": ("Pillow", "Image.resize(size, Image.LANCZOS)"),
    "cv2-nearest": ("OpenCV", "cv2.resize(img, size, interpolation=cv2.INTER_NEAREST)"),
    "cv2-linear": ("OpenCV", "cv2.resize(img, size, interpolation=cv2.INTER_LINEAR)"),
    "cv2-area": ("OpenCV", "cv2.resize(img, size, interpolation=cv2.INTER_AREA)"),
    "torch-bilinear": ("PyTorch", "F.interpolate(mode='bilinear', align_corners=False, antialias=False)"),
    "torch-bilinear-aa": ("PyTorch", "F.interpolate(mode='bilinear', align_corners=False, antialias=True)"),
    "torch-bicubic": ("PyTorch", "F.interpolate(mode='bicubic', align_corners=False, antialias=False)"),
    "torch-bicubic-aa": ("PyTorch", "F.interpolate(mode='bicubic', align_corners=False, antialias=True)"),
    "matlab-bicubic": ("irn.imaging.resize", "irn.imaging.resize.imresize(kernel='cubic', antialias=True)"),
}

_PIL_FILTERS = {
    "pil-nearest": Image.Resampling.NEAREST,
    "pil-bilinear": Image.Resampling.BILINEAR,
    "pil-bicubic": Image.Resampling.BICUBIC,
    "pil-lanczos": Image.Resampling.LANCZOS,
}
_TORCH_MODES = {
    "torch-bilinear": ("bilinear", False),
    "torch-bilinear-aa": ("bilinear", True),
    "torch-bicubic": ("bicubic", False),
    "torch-bicubic-aa": ("bicubic", True),
}

Size = tuple[int, int]  # (height, width)
ImageLike = np.ndarray | Tensor


# ---------------------------------------------------------------------------- helpers
def resizer_names() -> list[str]:
    """Every accepted ``--resizer`` value (``irn:MODEL`` stands for any model name or path)."""
    return [*LINEAR_RESIZERS, "irn:MODEL"]


def check_resizer(name: str) -> None:
    """Raise :class:`IRNError` for an unknown resizer name, or OpenCV missing for ``cv2-*``."""
    if name.startswith("irn:"):
        if not name[4:]:
            raise IRNError("resizer 'irn:' needs a model name or checkpoint path, e.g. irn:x2")
        return
    if name not in LINEAR_RESIZERS:
        raise IRNError(f"unknown resizer {name!r}; choose from {', '.join(resizer_names())}")
    if name.startswith("cv2-"):
        _cv2()


def _cv2() -> Any:
    try:
        import cv2
    except ImportError:
        raise IRNError("the cv2-* resizers need OpenCV: pip install 'irn[opencv]' (opencv-python-headless)") from None
    return cv2


def as_uint8(image: ImageLike) -> np.ndarray:
    """(H, W, 3) uint8 array, or (3, H, W) / (1, 3, H, W) float tensor in [0, 1] -> (H, W, 3) uint8."""
    if isinstance(image, Tensor):
        t = image.detach().float().cpu()
        if t.dim() == 4:
            t = t[0]
        return (t.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    arr = np.asarray(image)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"expected a uint8 (H, W, 3) array, got {arr.dtype} {arr.shape}")
    return arr


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    """PSNR in dB between two arrays on the same 0..peak scale (inf when identical)."""
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(peak**2 / mse)


def png_roundtrip(image: np.ndarray) -> np.ndarray:
    """Encode (H, W, 3) uint8 as PNG in memory and decode it again (what a file stores)."""
    buf = io.BytesIO()
    Image.fromarray(image, mode="RGB").save(buf, format="PNG")
    buf.seek(0)
    with Image.open(buf) as im:
        return np.asarray(im.convert("RGB")).copy()


def fit_target(target: np.ndarray, size: Size) -> np.ndarray:
    """TARGET resized to ``size`` (h, w) with Pillow Lanczos when it is not that size already."""
    if target.shape[:2] == size:
        return target
    im = Image.fromarray(target, mode="RGB").resize((size[1], size[0]), Image.Resampling.LANCZOS)
    return np.asarray(im).copy()


# ---------------------------------------------------------------------------- the libraries
def library_resize(image: np.ndarray, resizer: str, size: Size, model: Any = None) -> np.ndarray:
    """Resize (H, W, 3) uint8 to ``size`` (h, w) with the named library's own function -> uint8.

    Pillow and OpenCV resize the uint8 image directly (their 8-bit code paths). PyTorch and
    ``matlab-bicubic`` work on float32 (value / 255) and the result is rounded to 8 bits.
    ``irn:*`` needs ``model`` and returns ``model.downscale`` (its size is fixed by the scale).
    """
    h, w = size
    if resizer in _PIL_FILTERS:
        out = Image.fromarray(image, mode="RGB").resize((w, h), resample=_PIL_FILTERS[resizer])
        return np.asarray(out).copy()
    if resizer.startswith("cv2-"):
        cv2 = _cv2()
        flag = {"cv2-nearest": cv2.INTER_NEAREST, "cv2-linear": cv2.INTER_LINEAR, "cv2-area": cv2.INTER_AREA}
        return cv2.resize(image, (w, h), interpolation=flag[resizer])
    t = torch.from_numpy(np.array(image, dtype=np.float32)).permute(2, 0, 1)[None] / 255
    with torch.no_grad():
        if resizer in _TORCH_MODES:
            mode, aa = _TORCH_MODES[resizer]
            out_t = torch.nn.functional.interpolate(t, size=(h, w), mode=mode, align_corners=False, antialias=aa)
        elif resizer == "matlab-bicubic":
            out_t = imresize(t, size=(h, w))
        elif resizer.startswith("irn:"):
            if model is None:
                raise ValueError("an irn:* resizer needs the loaded model")
            out_t = model.downscale(t.to(next(model.parameters()).device)).cpu()
        else:
            raise IRNError(f"unknown resizer {resizer!r}; choose from {', '.join(resizer_names())}")
    return as_uint8(out_t)


def _axis_matrix(resizer: str, n_in: int, n_out: int) -> np.ndarray:
    """The (n_out x n_in) matrix the library applies along one axis, from resizing an identity.

    The identity (n_in x n_in) is resized to n_out rows and n_in columns: only the vertical
    pass runs (the column count is unchanged), so row i of the result is D applied to e_i
    sampled as a column -> the result is D itself.
    """
    eye = np.eye(n_in, dtype=np.float64)
    if resizer in _PIL_FILTERS:
        im = Image.fromarray(eye.astype(np.float32), mode="F")  # Pillow's float path: double weights
        return np.asarray(im.resize((n_in, n_out), resample=_PIL_FILTERS[resizer]), dtype=np.float64)
    if resizer.startswith("cv2-"):
        cv2 = _cv2()
        flag = {"cv2-nearest": cv2.INTER_NEAREST, "cv2-linear": cv2.INTER_LINEAR, "cv2-area": cv2.INTER_AREA}
        return cv2.resize(eye, (n_in, n_out), interpolation=flag[resizer]).astype(np.float64)
    t = torch.from_numpy(eye)[None, None]
    if resizer in _TORCH_MODES:
        mode, aa = _TORCH_MODES[resizer]
        out = torch.nn.functional.interpolate(t, size=(n_out, n_in), mode=mode, align_corners=False, antialias=aa)
        return out[0, 0].numpy()
    if resizer == "matlab-bicubic":
        return imresize(t, size=(n_out, n_in))[0, 0].numpy()
    if resizer.startswith("box"):
        s = n_in // n_out
        return np.kron(np.eye(n_out), np.full((1, s), 1.0 / s))
    raise IRNError(f"{resizer!r} is not a linear resizer; choose from {', '.join(LINEAR_RESIZERS)}")


def _separable(rows: sp.csr_matrix, cols: sp.csr_matrix, x: np.ndarray) -> np.ndarray:
    """(H, W, C) -> (h, w, C): rows (h x H) along axis 0, cols (w x W) along axis 1.

    The row pass reads the big array in place (a (H, W*C) matrix); only the smaller
    intermediate (h, W, C) is transposed for the column pass.
    """
    H, W, C = x.shape
    h, w = rows.shape[0], cols.shape[0]
    t = rows @ x.reshape(H, W * C)  # (h, W*C)
    t = np.ascontiguousarray(t.reshape(h, W, C).transpose(1, 0, 2)).reshape(W, h * C)
    u = cols @ t  # (w, h*C)
    return np.ascontiguousarray(u.reshape(w, h, C).transpose(1, 0, 2))


@dataclass(frozen=True)
class SeparableOperator:
    """D(X) = Dh X Dw^T per channel on (H, W, C) arrays: ``rows`` Dh (h x H), ``cols`` Dw (w x W)."""

    rows: sp.csr_matrix
    cols: sp.csr_matrix
    rows_t: sp.csr_matrix = field(repr=False)
    cols_t: sp.csr_matrix = field(repr=False)
    rows_sq: sp.csr_matrix = field(repr=False)  # Dh with squared entries
    cols_sq: sp.csr_matrix = field(repr=False)
    rows_gram_inv: np.ndarray = field(repr=False)  # (Dh Dh^T)^-1, (h x h)
    cols_gram_inv: np.ndarray = field(repr=False)  # (Dw Dw^T)^-1, (w x w)

    @classmethod
    def from_dense(cls, rows: np.ndarray, cols: np.ndarray) -> SeparableOperator:
        """Build from dense Dh (h x H) and Dw (w x W); both need full row rank (a downscale)."""
        from threadpoolctl import threadpool_limits

        r, c = sp.csr_matrix(rows), sp.csr_matrix(cols)
        with threadpool_limits(limits=1, user_api="blas"):  # small matrices: threads only contend
            gram_r, gram_c = np.linalg.pinv((r @ r.T).toarray()), np.linalg.pinv((c @ c.T).toarray())
        return cls(
            rows=r,
            cols=c,
            rows_t=r.T.tocsr(),
            cols_t=c.T.tocsr(),
            rows_sq=r.multiply(r).tocsr(),
            cols_sq=c.multiply(c).tocsr(),
            rows_gram_inv=gram_r,
            cols_gram_inv=gram_c,
        )

    @property
    def in_size(self) -> Size:
        return self.rows.shape[1], self.cols.shape[1]

    @property
    def out_size(self) -> Size:
        return self.rows.shape[0], self.cols.shape[0]

    def apply(self, x: np.ndarray) -> np.ndarray:
        """(H, W, C) -> (h, w, C): Dh X Dw^T per channel."""
        return _separable(self.rows, self.cols, x)

    def adjoint(self, v: np.ndarray) -> np.ndarray:
        """(h, w, C) -> (H, W, C): Dh^T V Dw per channel (columns first, so the big pass is last)."""
        h, w, C = v.shape
        H, W = self.in_size
        u = self.cols_t @ np.ascontiguousarray(v.transpose(1, 0, 2)).reshape(w, h * C)  # (W, h*C)
        t = np.ascontiguousarray(u.reshape(W, h, C).transpose(1, 0, 2)).reshape(h, W * C)
        return (self.rows_t @ t).reshape(H, W, C)

    def apply_squared(self, x: np.ndarray) -> np.ndarray:
        """(H, W, C) -> (h, w, C) with the entries of Dh and Dw squared: diag(D S D^T) for S = x."""
        return _separable(self.rows_sq, self.cols_sq, x)

    def gram_inverse(self, v: np.ndarray) -> np.ndarray:
        """(h, w, C) -> (D D^T)^-1 v = (Dh Dh^T)^-1 V (Dw Dw^T)^-1 per channel (symmetric Grams)."""
        h, w, C = v.shape
        t = (self.rows_gram_inv @ v.reshape(h, w * C)).reshape(h, w, C)
        return np.matmul(self.cols_gram_inv, t)

    def pinv(self, v: np.ndarray) -> np.ndarray:
        """(h, w, C) -> (H, W, C): D^+ v = D^T (D D^T)^-1 v (full row rank)."""
        return self.adjoint(self.gram_inverse(v))


def resize_matrices(resizer: str, in_size: Size, out_size: Size) -> SeparableOperator:
    """The exact separable operator of a linear resizer from ``in_size`` to ``out_size`` (h, w pairs).

    Extracted by resizing identity images with the library itself in floating point
    (Pillow 'F' mode, OpenCV float64, PyTorch float64, irn.imaging.resize float64).
    """
    (H, W), (h, w) = in_size, out_size
    if h > H or w > W or (h, w) == (H, W):
        raise IRNError(f"crafting needs a downscale: {W}x{H} -> {w}x{h} is not smaller")
    return SeparableOperator.from_dense(_axis_matrix(resizer, H, h), _axis_matrix(resizer, W, w))


def box_operator(in_size: Size, scale: int) -> SeparableOperator:
    """The s x s block average (area downscale by an integer factor, the Haar low-pass / s^2... / s)."""
    (H, W) = in_size
    return SeparableOperator.from_dense(_axis_matrix("box", H, H // scale), _axis_matrix("box", W, W // scale))


# ---------------------------------------------------------------------------- the solver
def least_change(cover: np.ndarray, target: np.ndarray, op: SeparableOperator) -> np.ndarray:
    """x* = A + D^+ (B - D A): the smallest change (in L2) with D x* = B, ignoring [0, 255].

    cover (H, W, C), target (h, w, C), any scale; returns float64 (H, W, C).
    """
    return cover + op.pinv(target - op.apply(cover))


@dataclass
class SolveInfo:
    """How :func:`solve_boxed` went: Newton and CG iterations, final max |D x - B|, clipped share."""

    newton_iterations: int = 0
    cg_iterations: int = 0
    max_residual: float = math.inf
    clipped_fraction: float = 0.0


def _pcg(
    apply_j: Callable[[np.ndarray], np.ndarray],
    precondition: Callable[[np.ndarray], np.ndarray],
    rhs: np.ndarray,
    rtol: float,
    maxiter: int,
) -> tuple[np.ndarray, int]:
    """Preconditioned conjugate gradients for J d = rhs (J symmetric positive definite)."""
    d = np.zeros_like(rhs)
    r = rhs.copy()
    z = precondition(r)
    p = z.copy()
    rz = float(np.sum(r * z))
    stop = rtol * math.sqrt(float(np.sum(rhs * rhs)))
    iterations = 0
    while iterations < maxiter:
        iterations += 1
        jp = apply_j(p)
        pjp = float(np.sum(p * jp))
        if pjp <= 0:
            break
        alpha = rz / pjp
        d += alpha * p
        r -= alpha * jp
        if math.sqrt(float(np.sum(r * r))) <= stop:
            break
        z = precondition(r)
        rz_new = float(np.sum(r * z))
        p = z + (rz_new / rz) * p
        rz = rz_new
    return d, iterations


def solve_boxed(
    cover: np.ndarray,
    target: np.ndarray,
    op: SeparableOperator,
    low: float = 0.0,
    high: float = 255.0,
    tol: float = 0.05,
    stall: float = 0.02,
    eps_ratio: float = 0.1,
    max_newton: int = 30,
    max_cg: int = 50,
) -> tuple[np.ndarray, SolveInfo]:
    """argmin ||x - A||^2 subject to D x = B and low <= x <= high (projection onto the intersection).

    cover A (H, W, C), target B (h, w, C), float64 on the 0..255 scale. Regularised semismooth
    Newton on the dual g(lam) = 1/2 ||x(lam) - A||^2 + <lam, B - D x(lam)>, with
    x(lam) = clip(A + D^T lam) and the KKT conditions x = clip(A + D^T lam), D x = B. Each step
    maximises g(lam) - eps/2 ||lam - lam_k||^2 around the current lam_k (a proximal point step:
    the method of multipliers in the primal), i.e. solves (D S D^T + eps) dlam = B - D x(lam_k)
    by conjugate gradients (S: the unclipped pixels), preconditioned with
    c^-1/2 (Dh Dh^T)^-1 (x) (Dw Dw^T)^-1 c^-1/2 (c: each LR pixel's share of kernel energy on
    unclipped pixels, plus eps), then backtracks (Armijo). eps = ``eps_ratio`` times the mean
    diagonal of D D^T keeps every step well conditioned without biasing the limit. A target the
    box cannot reach (an antialiasing kernel cannot make an edge sharper than itself) has no
    solution; the steps then keep reducing |D x - B| at a bounded pace and stop when the root
    mean square of D x - B improves by less than ``stall`` (relative) in a step. Stops when that
    root mean square is below ``tol`` grey levels (8-bit rounding adds 0.29 anyway).
    Returns float64 x (H, W, C) and :class:`SolveInfo`.
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):  # small dense products; threads only contend
        return _solve_boxed(cover, target, op, low, high, tol, stall, eps_ratio, max_newton, max_cg)


def _solve_boxed(
    cover: np.ndarray,
    target: np.ndarray,
    op: SeparableOperator,
    low: float,
    high: float,
    tol: float,
    stall: float,
    eps_ratio: float,
    max_newton: int,
    max_cg: int,
) -> tuple[np.ndarray, SolveInfo]:
    info = SolveInfo()
    energy = op.apply_squared(np.ones((*op.in_size, 1)))  # diag(D D^T), (h, w, 1)
    eps = eps_ratio * float(energy.mean())

    def evaluate(lam: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        y = cover + op.adjoint(lam)
        x = np.clip(y, low, high)
        residual = target - op.apply(x)
        change = x - cover
        dual = 0.5 * float(np.sum(change * change)) + float(np.sum(lam * residual))
        return y, x, residual, dual

    def rms(v: np.ndarray) -> float:
        return math.sqrt(float(np.mean(v * v)))

    lam = op.gram_inverse(target - op.apply(cover))  # A + D^T lam is the least-change x*
    y, x, residual, dual = evaluate(lam)
    for it in range(1, max_newton + 1):
        before = rms(residual)
        if before < tol:
            break
        info.newton_iterations = it
        free = ((y > low) & (y < high)).astype(np.float64)
        scale = 1.0 / np.sqrt((op.apply_squared(free) + eps) / energy)

        def apply_j(v: np.ndarray, free: np.ndarray = free) -> np.ndarray:
            return op.apply(free * op.adjoint(v)) + eps * v

        def precondition(v: np.ndarray, scale: np.ndarray = scale) -> np.ndarray:
            return scale * op.gram_inverse(scale * v)

        step, k = _pcg(apply_j, precondition, residual, rtol=1e-2, maxiter=max_cg)
        info.cg_iterations += k
        slope = float(np.sum(residual * step))
        t = 1.0
        while t >= 1e-4:  # ascent of the proximal objective (it equals g at lam_k)
            y_t, x_t, residual_t, dual_t = evaluate(lam + t * step)
            if dual_t - 0.5 * eps * t * t * float(np.sum(step * step)) >= dual + 1e-4 * t * slope:
                break
            t *= 0.5
        else:
            break  # no ascent along the step: as good as this precision allows
        lam, y, x, residual, dual = lam + t * step, y_t, x_t, residual_t, dual_t
        if rms(residual) > (1 - stall) * before:
            break
    info.max_residual = float(np.abs(residual).max())
    info.clipped_fraction = float(np.mean((y < low) | (y > high)))
    return x, info


# ---------------------------------------------------------------------------- crafting
@dataclass
class CraftResult:
    """A crafted image and what the solver knows about it (before checking with the library).

    image: (H, W, 3) uint8. psnr_bound: PSNR(A + D^+(B - D A), A), the least-change bound
    (None for an IRN, which is not linear). predicted_psnr_target: PSNR(D x, B) of the 8-bit
    x under the extracted (or, for an IRN, the model's unquantised) downscale.
    """

    image: np.ndarray
    resizer: str
    size: Size
    psnr_bound: float | None
    predicted_psnr_target: float
    seconds: float
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class Verification:
    """Figures measured through the real library on the 8-bit (PNG) image."""

    psnr_cover: float  # PSNR(x, COVER)
    psnr_target: float  # PSNR(resize(x), TARGET)


def _float(image: np.ndarray) -> np.ndarray:
    return np.asarray(image, dtype=np.float64)


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x), 0, 255).astype(np.uint8)


def craft(
    cover: ImageLike,
    target: ImageLike,
    resizer: str,
    size: Size | None = None,
    *,
    tol: float = 0.05,
) -> CraftResult:
    """x close to COVER whose downscale to ``size`` (h, w) by the linear ``resizer`` shows TARGET.

    cover (H, W, 3), target any size (fitted to ``size`` with Lanczos when different; ``size``
    defaults to the target's). Extracts D from the library, computes the least-change bound
    and solves the box-constrained projection (:func:`solve_boxed`); x is rounded to 8 bits.
    """
    from threadpoolctl import threadpool_limits

    check_resizer(resizer)
    if resizer.startswith("irn:"):
        raise IRNError("the irn:* resizer is not linear: use craft_irn(cover, target, model)")
    start = time.perf_counter()
    a8 = as_uint8(cover)
    b8 = as_uint8(target)
    size = size or b8.shape[:2]
    b8 = fit_target(b8, size)
    op = resize_matrices(resizer, a8.shape[:2], size)
    a, b = _float(a8), _float(b8)
    with threadpool_limits(limits=1, user_api="blas"):
        bound = psnr(least_change(a, b, op), a)
        x, info = _solve_boxed(a, b, op, 0.0, 255.0, tol, 0.02, 0.1, 30, 50)
        x8 = _to_uint8(x)
        predicted = psnr(op.apply(_float(x8)), b)
    return CraftResult(
        image=x8,
        resizer=resizer,
        size=size,
        psnr_bound=bound,
        predicted_psnr_target=predicted,
        seconds=time.perf_counter() - start,
        details={"solver": asdict(info)},
    )


def verify(
    image: np.ndarray, cover: ImageLike, target: ImageLike, resizer: str, size: Size | None = None, model: Any = None
) -> Verification:
    """PSNR(x, COVER) and PSNR(library resize of x to ``size``, TARGET) for an 8-bit x (H, W, 3).

    ``image`` should be what a file holds (see :func:`png_roundtrip`); TARGET is fitted to
    ``size`` like :func:`craft` does. ``model`` is needed for ``irn:*``.
    """
    b8 = as_uint8(target)
    size = size or b8.shape[:2]
    resized = library_resize(image, resizer, size, model=model)
    return Verification(
        psnr_cover=psnr(image, as_uint8(cover)), psnr_target=psnr(resized, fit_target(b8, resized.shape[:2]))
    )


# ---------------------------------------------------------------------------- IRN downscale
def _irn_lr(model: Any, x: np.ndarray) -> np.ndarray:
    """The model's unquantised LR (h, w, 3) on 0..255 for x (H, W, 3) on 0..255."""
    t = torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None].float().div(255).to(model_device(model))
    with torch.no_grad():
        lr, _ = model.encode(t)
    return lr[0].double().cpu().numpy().transpose(1, 2, 0) * 255


def _irn_sizes(model: Any, cover: np.ndarray, size: Size | None) -> Size:
    s = int(model.scale)
    H, W = cover.shape[:2]
    if H % s or W % s:
        raise IRNError(f"crafting for an IRN needs a cover whose sides are multiples of {s}, got {W}x{H}")
    lr_size = (H // s, W // s)
    if size is not None and tuple(size) != lr_size:
        raise IRNError(
            f"an x{s} IRN downscales {W}x{H} to {lr_size[1]}x{lr_size[0]}, not {size[1]}x{size[0]}: "
            "drop --size or pass that one"
        )
    return lr_size


def craft_irn(
    cover: ImageLike,
    target: ImageLike,
    model: Any,
    *,
    weight: float = 100.0,
    rounds: int = 1,
    gauss_newton: int = 3,
    cg_steps: int = 5,
    steps: int = 0,
    step_size: float = 0.5,
    size: Size | None = None,
    resizer: str = "irn",
) -> CraftResult:
    """x close to COVER whose IRN downscale (``model.downscale``) shows TARGET.

    Minimises mse(x, A) + weight * mse(LR(x), B) (0..255 units, x in [0, 255]; weight = inf:
    LR(x) = B), LR being the model's unquantised LR branch. Three stages:

    1. ``rounds`` box rounds (one forward pass each, no gradient). The LR branch starts with the
       Haar low-pass (an s x s box average, Eq. 1 of the paper) and then the coupling blocks, so
       LR(x) = D x + n(x) with D the box. A round solves the box-constrained linear problem
       D x = goal - n(x_k), goal = LR(A) + w/(1+w) (B - LR(A)) (the weighted optimum were n
       constant), with :func:`solve_boxed`. Enough when the couplings are weak; a trained model
       responds to the box step far from linearly, so the best round is kept, not the last.
    2. ``gauss_newton`` Gauss-Newton steps with the model's true Jacobian J at x_k: the weighted
       least-change step x = clip(x_k + S (A - x_k + J^T mu)) with
       (J S J^T + I/rho) mu = B - LR(x_k) - J S (A - x_k) (S: the free pixels),
       rho = weight s^2, solved by ``cg_steps`` conjugate-gradient steps (J^T by backpropagation
       through one retained graph, J by a forward finite difference), with backtracking on the
       objective; pixels pinned at 0 or 255 are held fixed (an active set) so that the other
       pixels make up for them.
    3. ``steps`` projected Adam steps (step size in grey levels) on the objective, through the model.

    Returns the 8-bit x; ``details`` has the objective's two PSNRs after each stage.
    """
    from threadpoolctl import threadpool_limits

    start = time.perf_counter()
    a8 = as_uint8(cover)
    lr_size = _irn_sizes(model, a8, size)
    b8 = fit_target(as_uint8(target), lr_size)
    a, b = _float(a8), _float(b8)
    op = box_operator(a8.shape[:2], int(model.scale))
    alpha = 1.0 if math.isinf(weight) else weight / (1.0 + weight)

    def objective(x: np.ndarray, lr: np.ndarray) -> float:
        target_term = float(np.mean((lr - b) ** 2))
        if math.isinf(weight):
            return target_term
        return float(np.mean((x - a) ** 2)) + weight * target_term

    lr_a = _irn_lr(model, a)
    goal = lr_a + alpha * (b - lr_a)
    x, best = a, objective(a, lr_a)
    nonlinear = lr_a - op.apply(a)
    history: list[dict[str, Any]] = []
    with threadpool_limits(limits=1, user_api="blas"):
        for _ in range(rounds):
            candidate, _info = _solve_boxed(a, goal - nonlinear, op, 0.0, 255.0, 0.05, 0.02, 0.1, 30, 50)
            lr_c = _irn_lr(model, candidate)
            nonlinear = lr_c - op.apply(candidate)
            history.append({"stage": "box", "psnr_cover": psnr(candidate, a), "psnr_target": psnr(lr_c, b)})
            if objective(candidate, lr_c) < best:
                x, best = candidate, objective(candidate, lr_c)
    free = ((x > 0) & (x < 255)) | (x == a)  # pixels at a bound that the cover did not have stay put
    for _ in range(gauss_newton):
        x, lr_x, free = _irn_gauss_newton_step(model, x, free, a, b, weight, cg_steps, objective)
        history.append({"stage": "gauss-newton", "psnr_cover": psnr(x, a), "psnr_target": psnr(lr_x, b)})
    if steps > 0 and not math.isinf(weight):
        x = _irn_adam(model, x, a, b, weight, steps, step_size)
        history.append({"stage": "adam", "psnr_cover": psnr(x, a), "psnr_target": psnr(_irn_lr(model, x), b)})
    x8 = _to_uint8(x)
    predicted = psnr(_irn_lr(model, _float(x8)), b)
    return CraftResult(
        image=x8,
        resizer=resizer,
        size=lr_size,
        psnr_bound=None,
        predicted_psnr_target=predicted,
        seconds=time.perf_counter() - start,
        details={"weight": weight, "stages": history},
    )


def _irn_gauss_newton_step(
    model: Any,
    x: np.ndarray,
    free: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    weight: float,
    cg_steps: int,
    objective: Callable[[np.ndarray, np.ndarray], float],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One Gauss-Newton step of :func:`craft_irn` (arrays (H, W, 3) / (h, w, 3) on 0..255).

    Only the ``free`` pixels move (S): x' = x + S (A - x + J^T mu) with
    (J S J^T + I/rho) mu = B - LR(x) - J S (A - x); pixels the step pushes past 0 or 255 are
    clipped and leave the free set. Returns (x', LR(x'), free').
    """
    device = model_device(model)
    scale = int(model.scale)
    inv_rho = 0.0 if math.isinf(weight) else 1.0 / (weight * scale * scale)

    def chw(v: np.ndarray) -> Tensor:
        return torch.from_numpy(np.ascontiguousarray(v.transpose(2, 0, 1)))[None].float().to(device)

    def hwc(t: Tensor) -> np.ndarray:
        return t.detach()[0].double().cpu().numpy().transpose(1, 2, 0) * 255

    x_t, a_t, b_t = chw(x) / 255, chw(a) / 255, chw(b) / 255
    mask = chw(free.astype(np.float64))
    with torch.enable_grad():
        x_var = x_t.clone().requires_grad_(True)
        lr_t, _ = model.encode(x_var)

        def jt(mu: Tensor) -> Tensor:  # S J^T mu, through the retained graph
            return mask * torch.autograd.grad(lr_t, x_var, grad_outputs=mu, retain_graph=True)[0]

        lr0 = lr_t.detach()

        def jv(v: Tensor) -> Tensor:  # J v by a forward difference of about a quarter grey level
            h = 1e-3 / max(float(v.abs().max()), 1e-12)
            with torch.no_grad():
                return (model.encode(x_t + h * v)[0] - lr0) / h

        toward_cover = mask * (a_t - x_t)
        rhs = b_t - lr0 - jv(toward_cover)
        mu = torch.zeros_like(rhs)
        r = rhs.clone()
        p = r.clone()
        rr = float((r * r).sum())
        for _ in range(cg_steps):
            q = jv(jt(p)) + inv_rho * p
            pq = float((p * q).sum())
            if pq <= 0 or rr == 0:
                break
            step = rr / pq
            mu += step * p
            r -= step * q
            rr_new = float((r * r).sum())
            p = r + (rr_new / rr) * p
            rr = rr_new
        proposal = x_t + toward_cover + jt(mu)
    outside = hwc((proposal < 0) | (proposal > 1)) > 0
    proposal = proposal.clamp(0, 1)
    current = objective(x, hwc(lr0))
    for t in (1.0, 0.5, 0.25):
        cand = x_t + t * (proposal - x_t)
        cand_np = hwc(cand)
        with torch.no_grad():
            cand_lr = hwc(model.encode(cand)[0])
        if objective(cand_np, cand_lr) < current:
            return cand_np, cand_lr, free & ~outside if t == 1.0 else free
    return x, hwc(lr0), free


def _irn_adam(
    model: Any, x: np.ndarray, a: np.ndarray, b: np.ndarray, weight: float, steps: int, step_size: float
) -> np.ndarray:
    """Projected Adam on mse(x, A) + weight * mse(LR(x), B), all on 0..255; returns x (H, W, 3)."""
    device = model_device(model)

    def chw(v: np.ndarray) -> Tensor:
        return torch.from_numpy(np.ascontiguousarray(v.transpose(2, 0, 1)))[None].float().to(device)

    a_t, b_t = chw(a) / 255, chw(b) / 255
    param = (chw(x) / 255).requires_grad_(True)
    optimiser = torch.optim.Adam([param], lr=step_size / 255)
    for _ in range(steps):
        optimiser.zero_grad()
        lr, _ = model.encode(param)
        loss = torch.mean((param - a_t) ** 2) + weight * torch.mean((lr - b_t) ** 2)
        loss.backward()
        optimiser.step()
        with torch.no_grad():
            param.clamp_(0, 1)
    return param.detach()[0].double().cpu().numpy().transpose(1, 2, 0) * 255


def irn_tradeoff(
    cover: ImageLike, target: ImageLike, model: Any, weights: Sequence[float], **kwargs: Any
) -> list[dict[str, float]]:
    """The trade-off curve: for each weight, PSNR(x, COVER) and PSNR(model.downscale(x), TARGET).

    Both are measured on the PNG-decoded 8-bit x through ``model.downscale`` (quantised LR).
    """
    curve = []
    for w in weights:
        result = craft_irn(cover, target, model, weight=w, **kwargs)
        image = png_roundtrip(result.image)
        check = verify(image, cover, target, "irn:", result.size, model=model)
        curve.append(
            {"weight": w, "psnr_cover": check.psnr_cover, "psnr_target": check.psnr_target, "seconds": result.seconds}
        )
    return curve


# ---------------------------------------------------------------------------- reverse
@dataclass
class ReverseResult:
    """An LR image (h, w, 3) uint8 that looks like COVER and whose IRN upscale (z = 0) looks like TARGET."""

    image: np.ndarray
    upscaled: np.ndarray  # (H, W, 3) uint8: model.upscale(image, z="zero")
    psnr_cover: float  # PSNR(LR, COVER)
    psnr_target: float  # PSNR(upscale(LR), TARGET)
    psnr_cover_start: float  # the same two for the starting point (COVER blended with box(TARGET))
    psnr_target_start: float
    seconds: float
    weight: float
    steps: int


def craft_reverse(
    cover: ImageLike,
    target: ImageLike,
    model: Any,
    *,
    weight: float = 10.0,
    steps: int = 100,
    step_size: float = 2.0,
) -> ReverseResult:
    """Optimise an LR image: min mse(lr, COVER) + weight * mse(model.upscale(lr, z=0), TARGET).

    target (H, W, 3) with sides multiples of the scale; cover is fitted to (H/s, W/s).
    With z = 0 the upscale is nearly a box upsampling of lr (the inverse Haar with no detail),
    so the start is the weighted optimum for that: (C + w box(T)) / (1 + w); then ``steps``
    Adam steps (step size in grey levels) with gradients through the inverse network (Eq. 2
    run backwards), projecting to [0, 1]. Both PSNRs are measured on the 8-bit LR.
    """
    start = time.perf_counter()
    t8 = as_uint8(target)
    s = int(model.scale)
    H, W = t8.shape[:2]
    if H % s or W % s:
        raise IRNError(f"the reverse craft needs a TARGET whose sides are multiples of {s}, got {W}x{H}")
    c8 = fit_target(as_uint8(cover), (H // s, W // s))
    device = model_device(model)

    def chw(v: np.ndarray) -> Tensor:
        return torch.from_numpy(np.ascontiguousarray(v.transpose(2, 0, 1)))[None].float().div(255).to(device)

    c_t, t_t = chw(c8), chw(t8)
    box_t = torch.nn.functional.avg_pool2d(t_t, s)
    init = (c_t + weight * box_t) / (1 + weight)

    def measure(lr: Tensor) -> tuple[np.ndarray, np.ndarray, float, float]:
        lr8 = as_uint8(lr)
        with torch.no_grad():
            up = model.upscale(chw(lr8), z="zero")
        up8 = as_uint8(up)
        return lr8, up8, psnr(lr8, c8), psnr(up8, t8)

    _, _, cover0, target0 = measure(init)
    param = init.clone().requires_grad_(True)
    optimiser = torch.optim.Adam([param], lr=step_size / 255)
    for _ in range(steps):
        optimiser.zero_grad()
        up = model.decode(param, param.new_zeros((1, model.latent_channels, *param.shape[-2:])))
        loss = torch.mean((param - c_t) ** 2) + weight * torch.mean((up - t_t) ** 2)
        loss.backward()
        optimiser.step()
        with torch.no_grad():
            param.clamp_(0, 1)
    lr8, up8, psnr_c, psnr_t = measure(param.detach())
    return ReverseResult(
        image=lr8,
        upscaled=up8,
        psnr_cover=psnr_c,
        psnr_target=psnr_t,
        psnr_cover_start=cover0,
        psnr_target_start=target0,
        seconds=time.perf_counter() - start,
        weight=weight,
        steps=steps,
    )


# ---------------------------------------------------------------------------- detector
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
