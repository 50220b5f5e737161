"""The resizers :mod:`irn.experiments.craft` attacks, and their exact linear operators.

Every resizer that real software uses for a fixed pair of sizes is *linear and separable*:
per channel, D(X) = Dh X Dw^T with a row matrix Dh (h x H) and a column matrix Dw (w x W).
:func:`resize_matrices` extracts both matrices from the library itself (by resizing identity
images in floating point), so they are the library's own weights, not a re-derivation;
:class:`SeparableOperator` applies D, its adjoint and its pseudo-inverse without ever forming
the full (HW x hw) matrix. :func:`library_resize` runs the library's own 8-bit resize.

Also the image helpers the attack and the detector share (:func:`as_uint8`, :func:`psnr`).
Images are uint8 arrays (H, W, 3) (or (3, H, W) float tensors in [0, 1], converted); PSNR is
on the 0-255 scale over all channels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from PIL import Image
from torch import Tensor

from irn.errors import IRNError
from irn.imaging.resize import imresize

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
