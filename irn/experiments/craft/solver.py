"""The least-change step and the box-constrained projection behind :func:`irn.experiments.craft.craft`.

The smallest change of a COVER A whose downscale D x meets a TARGET B is the pseudo-inverse step

    x* = A + D^+ (B - D A),   D^+ = Dh^+ (x) Dw^+,

and ``PSNR(x*, A)`` bounds what any method can reach (the "least-change bound"). x* may
leave [0, 255]; :func:`solve_boxed` finds the exact projection of A onto
{x : D x = B} intersected with the box [0, 255]^n by a semismooth Newton method on the
dual: x(lam) = clip(A + D^T lam), Newton steps (D S D^T) dlam = B - D x(lam) with S the
unclipped pixels, solved by conjugate gradients preconditioned with the separable
(Dh Dh^T)^-1 (x) (Dw Dw^T)^-1. Nothing is ever formed at full (HW x hw) size.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from irn.experiments.craft.resizers import SeparableOperator


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
