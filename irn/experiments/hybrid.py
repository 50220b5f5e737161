"""Hybrid images: NEAR seen up close, FAR from a distance (after Oliva, Torralba and Schyns, 2006).

The image x (3, H, W) in [0, 1] minimises, per pixel (means over all 3 H W values),

    L(x) = w_near * mean((x - NEAR)^2) + w_far * mean((G * lin(x) - G * lin(FAR))^2)

with ``lin(v) = v ** gamma`` (gamma 2.2: the blur is computed in linear light, as optics
blurs) and ``G *`` a separable Gaussian blur of standard deviation ``sigma`` pixels,
radius ``ceil(3 sigma)``, kernel normalised to sum 1, with *symmetric* boundaries
(half-sample mirror: ``... c b a | a b c ...``). :func:`blur` is that operator.

Two solvers:

* ``"gd"``: the plain recipe -- x = sigmoid(theta), gradient descent on theta with step
  ``lr`` applied to the per-pixel gradient (the gradient of the *sum* of the per-pixel
  terms), blur by direct separable convolution. The benchmark's baseline.
* ``"admm"`` (default): uses the problem's structure. With symmetric boundaries the blur
  is *diagonal in the DCT-II basis* (eigenvalue ``g(k)`` per frequency, the kernel's
  cosine transform), so in linear light ``u = lin(x)`` the far term is a per-frequency
  quadratic, while the near term (with the [0, 1] box) is separable per pixel. ADMM on
  the split u = v alternates the two exact minimisations:

  - per pixel: ``min_x w_near (x - NEAR)^2 + rho/2 (x^gamma - (v - y))^2`` over x in [0, 1]
    (a few safeguarded Newton steps; the box is handled exactly, so no sigmoid is needed);
  - per DCT frequency: ``v = (2 w_far g^2 f + rho (u + y)) / (2 w_far g^2 + rho)``, the
    weighted average of FAR and the current pixels (``f`` = DCT of lin(FAR), ``g`` the blur's
    eigenvalue at that frequency);
  - ``y += u - v``, with over-relaxation (u replaced by 1.6 u + (1 - 1.6) v_prev); ``rho`` is
    adapted by residual balancing (Boyd et al. 2011, Sec. 3.4.1, 3.4.3), never below w_far.

  Each iteration costs one DCT and one inverse DCT (scipy.fft) plus elementwise work.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont
from torch import Tensor

from irn.errors import IRNError
from irn.imaging.io import to_pil
from irn.imaging.resize import imresize

Solver = Literal["admm", "gd"]
SOLVERS: tuple[str, ...] = ("admm", "gd")
#: ADMM penalty floor, as a multiple of w_far: below it the split can diverge (the per-pixel
#: step is not convex in linear light), measured on photos and noise for w_far up to 32.
RHO_MIN_FACTOR = 1.0
#: ADMM over-relaxation (Boyd et al. 2011, Sec. 3.4.3); 1.6 converges faster at every weight tried.
RELAXATION = 1.6


@dataclass(frozen=True)
class HybridConfig:
    """Settings of a hybrid image (the CLI flags one to one).

    sigma: Gaussian blur standard deviation in pixels (radius ceil(3 sigma));
    near_weight, far_weight: w_near (> 0) and w_far (>= 0) of the loss;
    gamma: lin(v) = v ** gamma for the blur; solver: "admm" or "gd";
    iterations: ADMM iterations at most (stops earlier at relative residuals below ``tol``);
    steps, lr: gradient descent of the "gd" solver (the plain recipe: 200 steps, lr 0.3).
    """

    sigma: float = 6.0
    near_weight: float = 1.0
    far_weight: float = 1.0
    gamma: float = 2.2
    solver: Solver = "admm"
    iterations: int = 200
    tol: float = 1e-4
    steps: int = 200
    lr: float = 0.3

    def __post_init__(self) -> None:
        if not (math.isfinite(self.sigma) and self.sigma > 0):
            raise IRNError(f"--sigma must be a positive number of pixels, got {self.sigma}")
        if not (math.isfinite(self.near_weight) and self.near_weight > 0):
            raise IRNError(f"--near-weight must be positive, got {self.near_weight}")
        if not (math.isfinite(self.far_weight) and self.far_weight >= 0):
            raise IRNError(f"--far-weight must be zero or positive, got {self.far_weight}")
        if not (math.isfinite(self.gamma) and 1 <= self.gamma <= 4):
            raise IRNError(f"--gamma must be between 1 and 4, got {self.gamma}")
        if self.solver not in SOLVERS:
            raise IRNError(f"--solver must be one of {', '.join(SOLVERS)}, got {self.solver!r}")
        if self.iterations < 1 or self.steps < 1:
            raise IRNError("--iterations and --steps must be at least 1")
        if not (self.tol >= 0 and self.lr > 0):
            raise IRNError("--tol must be >= 0 and --lr positive")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ----------------------------------------------------------------------------- the blur
def gaussian_kernel(sigma: float) -> Tensor:
    """The normalised 1-D Gaussian (2r + 1,), r = ceil(3 sigma), float64."""
    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-(t**2) / (2 * sigma**2))
    return k / k.sum()


def _symmetric_index(n: int, radius: int) -> Tensor:
    """Indices of a length-n axis padded by ``radius`` on both sides, half-sample mirrored (period 2n)."""
    idx = torch.remainder(torch.arange(-radius, n + radius), 2 * n)
    return torch.where(idx >= n, 2 * n - 1 - idx, idx)


def _pad_symmetric(x: Tensor, radius: int, dim: int) -> Tensor:
    n = x.shape[dim]
    if radius <= n:  # one mirror each side: slices and flips (cheap backward)
        head = x.narrow(dim, 0, radius).flip(dim)
        tail = x.narrow(dim, n - radius, radius).flip(dim)
        return torch.cat((head, x, tail), dim)
    return x.index_select(dim, _symmetric_index(n, radius).to(x.device))


def blur(x: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur of (..., H, W), symmetric boundaries; differentiable, x's dtype."""
    k = gaussian_kernel(sigma).to(device=x.device, dtype=x.dtype)
    radius = (k.numel() - 1) // 2
    shape = x.shape
    h, w = shape[-2:]
    planes = x.reshape(1, -1, h, w)
    m = planes.shape[1]
    planes = F.conv2d(_pad_symmetric(planes, radius, -1), k.view(1, 1, 1, -1).expand(m, 1, 1, -1), groups=m)
    planes = F.conv2d(_pad_symmetric(planes, radius, -2), k.view(1, 1, -1, 1).expand(m, 1, -1, 1), groups=m)
    return planes.reshape(shape)


def dct_eigenvalues(n: int, sigma: float) -> np.ndarray:
    """Eigenvalues (n,) of the 1-D symmetric-boundary blur in the orthonormal DCT-II basis.

    g(j) = k_0 + 2 sum_m k_m cos(pi j m / n): the kernel's cosine transform on the period 2n.
    """
    k = gaussian_kernel(sigma).numpy()
    radius = (k.size - 1) // 2
    j = np.arange(n, dtype=np.float64)[:, None]
    m = np.arange(1, radius + 1, dtype=np.float64)[None, :]
    return k[radius] + 2 * (k[radius + 1 :][None, :] * np.cos(np.pi * j * m / n)).sum(1)


def hybrid_loss(x: Tensor, near: Tensor, far: Tensor, config: HybridConfig) -> tuple[Tensor, Tensor, Tensor]:
    """(L, near term, far term) for x, NEAR, FAR (3, H, W) in [0, 1], by direct convolution.

    Terms are weighted per-pixel means, L = near + far.
    """
    g = config.gamma
    near_term = config.near_weight * ((x - near) ** 2).mean()
    far_term = (
        config.far_weight
        * ((blur(x.clamp(min=0) ** g, config.sigma) - blur(far.clamp(0, 1) ** g, config.sigma)) ** 2).mean()
    )
    return near_term + far_term, near_term, far_term


# ----------------------------------------------------------------------------- solvers
@dataclass
class SolveInfo:
    """What a solver did: iterations run, seconds, final rho (ADMM), why it stopped."""

    solver: str
    iterations: int
    seconds: float
    stopped: str
    rho: float | None = None


Callback = Callable[[int, Tensor], None]


def solve_gd(
    near: Tensor,
    far: Tensor,
    config: HybridConfig,
    *,
    init: Tensor | None = None,
    callback: Callback | None = None,
) -> tuple[Tensor, SolveInfo]:
    """The plain recipe: x = sigmoid(theta), ``config.steps`` gradient steps of size ``config.lr``.

    The step is applied to the per-pixel gradient (gradient of the sum of per-pixel terms).
    theta starts at logit(clamp(init, 0.01, 0.99)), init = NEAR by default. Returns x (3, H, W).
    """
    start = time.perf_counter()
    init = near if init is None else init
    theta = torch.logit(init.clamp(0.01, 0.99)).detach().requires_grad_(True)
    far_blur = blur(far.clamp(0, 1) ** config.gamma, config.sigma).detach()
    n = theta.numel()
    for step in range(config.steps):
        x = torch.sigmoid(theta)
        loss = (
            config.near_weight * ((x - near) ** 2).mean()
            + config.far_weight * ((blur(x**config.gamma, config.sigma) - far_blur) ** 2).mean()
        )
        (grad,) = torch.autograd.grad(loss * n, theta)
        with torch.no_grad():
            theta -= config.lr * grad
        if callback is not None:
            callback(step + 1, torch.sigmoid(theta).detach())
    x = torch.sigmoid(theta).detach()
    return x, SolveInfo("gd", config.steps, time.perf_counter() - start, "steps")


def _dct_workers() -> int:
    return max(1, min(torch.get_num_threads(), os.cpu_count() or 1))


def solve_admm(
    near: Tensor,
    far: Tensor,
    config: HybridConfig,
    *,
    init: Tensor | None = None,
    callback: Callback | None = None,
    newton_steps: int = 4,
) -> tuple[Tensor, SolveInfo]:
    """ADMM in linear light with the blur diagonalised by the DCT (see the module docstring).

    near, far: (3, H, W) in [0, 1]. Returns x (3, H, W) float32 in [0, 1] (always feasible).
    ``callback(iteration, x)`` is called after each iteration (for benchmarks; its time counts).
    """
    from scipy import fft as sfft

    start = time.perf_counter()
    f32 = np.float32
    workers = _dct_workers()

    def dct(a: np.ndarray) -> np.ndarray:
        return sfft.dctn(a, axes=(-2, -1), norm="ortho", workers=workers)

    def idct(a: np.ndarray) -> np.ndarray:
        return sfft.idctn(a, axes=(-2, -1), norm="ortho", workers=workers)

    g, a, b = config.gamma, config.near_weight, config.far_weight
    near_np = near.detach().cpu().float().clamp(0, 1).numpy()
    h, w = near_np.shape[-2:]
    eig = (dct_eigenvalues(h, config.sigma)[:, None] * dct_eigenvalues(w, config.sigma)[None, :]).astype(f32)
    target = eig * dct(far.detach().cpu().float().clamp(0, 1).numpy() ** f32(g))  # DCT of G * lin(FAR)
    numerator = f32(2 * b) * eig * target
    eig2b = f32(2 * b) * eig**2

    x = (near if init is None else init).detach().cpu().float().clamp(0, 1).numpy().copy()
    u = x ** f32(g)
    v = u.copy()
    y = np.zeros_like(u)  # scaled dual variable
    rho = float(a + b) / 2
    rho_min = RHO_MIN_FACTOR * b
    rho = max(rho, rho_min)
    sqrt_n = math.sqrt(u.size)
    stopped = "iterations"
    iteration = 0
    for iteration in range(1, config.iterations + 1):
        # per-pixel step: min_x a (x - NEAR)^2 + rho/2 (x^g - target_u)^2, x in [0, 1]
        target_u = v - y
        for _ in range(newton_steps):
            xg1 = np.power(np.maximum(x, f32(1e-6)), f32(g - 1))
            xg = xg1 * x
            d1 = f32(2 * a) * (x - near_np) + f32(rho * g) * (xg - target_u) * xg1
            d2 = f32(2 * a) + f32(rho * g * g) * xg1 * xg1  # Gauss-Newton curvature, >= 2a > 0
            x = np.clip(x - d1 / d2, 0, 1)
        u = x ** f32(g)
        # per-frequency step: weighted average of the far target and the pixels
        v_prev = v
        u_relaxed = f32(RELAXATION) * u + f32(1 - RELAXATION) * v_prev
        v = idct((numerator + f32(rho) * dct(u_relaxed + y)) / (eig2b + f32(rho)))
        y += u_relaxed - v
        primal = float(np.linalg.norm(u - v))
        dual = rho * float(np.linalg.norm(v - v_prev))
        if callback is not None:
            callback(iteration, torch.from_numpy(x.copy()))
        scale_p = max(float(np.linalg.norm(u)), float(np.linalg.norm(v)), 1e-12)
        scale_d = max(rho * float(np.linalg.norm(y)), 1e-12)
        if primal <= config.tol * scale_p + 1e-7 * sqrt_n and dual <= config.tol * scale_d + 1e-7 * sqrt_n:
            stopped = "converged"
            break
        if primal > 10 * dual:
            rho *= 2
            y /= 2
        elif dual > 10 * primal and rho / 2 >= rho_min:
            rho /= 2
            y *= 2
    info = SolveInfo("admm", iteration, time.perf_counter() - start, stopped, rho)
    return torch.from_numpy(x), info


def solve(
    near: Tensor, far: Tensor, config: HybridConfig, *, callback: Callback | None = None
) -> tuple[Tensor, SolveInfo]:
    """The hybrid image x (3, H, W) in [0, 1] for NEAR and FAR (3, H, W), with ``config.solver``."""
    if near.shape != far.shape or near.dim() != 3 or near.shape[0] != 3:
        raise IRNError(f"NEAR and FAR must both be (3, H, W) of one size, got {tuple(near.shape)}, {tuple(far.shape)}")
    if config.solver == "gd":
        return solve_gd(near, far, config, callback=callback)
    return solve_admm(near, far, config, callback=callback)


# ----------------------------------------------------------------------------- images
def fit_to(image: Tensor, size_hw: tuple[int, int]) -> Tensor:
    """Centre-crop (3, H, W) to the aspect ratio of ``size_hw`` and resize to it (MATLAB bicubic)."""
    th, tw = size_hw
    h, w = image.shape[-2:]
    if h * tw > w * th:  # too tall
        ch, cw = max(1, round(w * th / tw)), w
    else:
        ch, cw = h, max(1, round(h * tw / th))
    top, left = (h - ch) // 2, (w - cw) // 2
    image = image[..., top : top + ch, left : left + cw]
    if (ch, cw) != (th, tw):
        image = imresize(image, size=(th, tw)).clamp(0, 1)
    return image


def view_at_distance(x: Tensor, factor: int, gamma: float = 2.2) -> Tensor:
    """(3, H, W) as seen ``factor`` times farther away: downscaled by ``factor`` in linear light (antialiased)."""
    if factor == 1:
        return x
    small = imresize(x.clamp(0, 1) ** gamma, scale=1 / factor, kernel="cubic").clamp(0, 1)
    return small ** (1 / gamma)


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):
        return ImageFont.load_default()


def viewing_strip(
    x: Tensor, factors: tuple[int, ...] = (1, 2, 4, 8), *, sigma: float | None = None, gamma: float = 2.2
) -> Image.Image:
    """A strip: x (3, H, W) downscaled by each factor (farther away), bottom-aligned and labelled;
    with ``sigma``, also x blurred in linear light at full size (what the far term sees)."""
    panels: list[tuple[str, Image.Image]] = []
    for f in factors:
        panels.append(("up close" if f == 1 else f"{f}x farther", to_pil(view_at_distance(x, f, gamma))))
    if sigma is not None:
        blurred = blur(x.clamp(0, 1).double() ** gamma, sigma).clamp(0, 1) ** (1 / gamma)
        panels.append((f"blur sigma {sigma:g}", to_pil(blurred.float())))
    gap, label_h = 10, 24
    font = _font(14)
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    slots = [max(p.width, int(measure.textlength(label, font=font)) + 6) for label, p in panels]
    width = sum(slots) + gap * (len(panels) + 1)
    bottom = gap + max(p.height for _, p in panels)
    canvas = Image.new("RGB", (width, bottom + label_h + gap), "white")
    draw = ImageDraw.Draw(canvas)
    left = gap
    for (label, p), slot in zip(panels, slots, strict=True):
        canvas.paste(p, (left + (slot - p.width) // 2, bottom - p.height))
        draw.text((left + slot / 2, bottom + label_h / 2 + 2), label, fill="black", font=font, anchor="mm")
        left += slot + gap
    return canvas


@dataclass
class HybridResult:
    """The image (3, H, W) in [0, 1], its loss terms (float32 and after 8-bit rounding) and solver info."""

    image: Tensor
    loss: float
    near_term: float
    far_term: float
    loss_8bit: float
    info: SolveInfo

    def to_dict(self) -> dict[str, Any]:
        return {
            "loss": self.loss,
            "near_term": self.near_term,
            "far_term": self.far_term,
            "loss_8bit": self.loss_8bit,
            "solver": asdict(self.info),
        }


def make_hybrid(near: Tensor, far: Tensor, config: HybridConfig) -> HybridResult:
    """Solve for the hybrid of NEAR and FAR (3, H, W) in [0, 1] (same size) and score it."""
    x, info = solve(near, far, config)
    with torch.no_grad():
        loss, nt, ft = hybrid_loss(x.double(), near.double(), far.double(), config)
        q = torch.round(x.clamp(0, 1) * 255) / 255
        loss_q, _, _ = hybrid_loss(q.double(), near.double(), far.double(), config)
    return HybridResult(x, float(loss), float(nt), float(ft), float(loss_q), info)
