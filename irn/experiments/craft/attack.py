"""Crafting images whose thumbnail shows something else ("image-scaling attacks").

Given a COVER image A (H x W) and a TARGET B (h x w), :func:`craft` finds x close to A whose
downscale D(x) by a named linear resizer equals B, with the operator of
:mod:`irn.experiments.craft.resizers` and the solver of :mod:`irn.experiments.craft.solver`;
:func:`verify` measures the result through the library itself.

For an IRN model's downscale (not linear), :func:`craft_irn` uses the Haar low-pass
(an s x s box average, the LR branch of the paper's Eq. 1 before the coupling blocks)
as the linear part, re-estimates the model's deviation from it with one forward pass per
round, and finishes with Adam steps on ``mse(x, A) + weight * mse(LR(x), B)``.
:func:`craft_reverse` does the opposite direction: an LR image that looks like COVER
whose IRN upscale (z = 0) looks like TARGET.
"""

from __future__ import annotations

import io
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from irn.errors import IRNError
from irn.experiments.craft.resizers import (
    ImageLike,
    Size,
    as_uint8,
    box_operator,
    check_resizer,
    library_resize,
    psnr,
    resize_matrices,
)
from irn.experiments.craft.solver import _solve_boxed, least_change
from irn.pipeline import model_device


# ---------------------------------------------------------------------------- helpers
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
Progress = Callable[[str], None]
"""A hook called once per unit of work done, with the stage's name ("box round", "Gauss-Newton",
"Adam"); the units are box rounds, conjugate-gradient steps and Adam steps (see
:func:`craft_irn_units`)."""


def craft_irn_units(
    *, weight: float = 100.0, rounds: int = 1, gauss_newton: int = 3, cg_steps: int = 5, steps: int = 0
) -> int:
    """How many times :func:`craft_irn` with these settings calls its ``progress`` hook: one per
    box round, ``cg_steps`` per Gauss-Newton step (one per conjugate-gradient step) and one per
    Adam step (none for ``weight`` = inf, which skips Adam)."""
    adam = steps if steps > 0 and not math.isinf(weight) else 0
    return rounds + gauss_newton * cg_steps + adam


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
    progress: Progress | None = None,
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
    ``progress`` (see :data:`Progress`) is called :func:`craft_irn_units` times in all.
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
            if progress is not None:
                progress("box round")
    free = ((x > 0) & (x < 255)) | (x == a)  # pixels at a bound that the cover did not have stay put
    for _ in range(gauss_newton):
        x, lr_x, free = _irn_gauss_newton_step(model, x, free, a, b, weight, cg_steps, objective, progress)
        history.append({"stage": "gauss-newton", "psnr_cover": psnr(x, a), "psnr_target": psnr(lr_x, b)})
    if steps > 0 and not math.isinf(weight):
        x = _irn_adam(model, x, a, b, weight, steps, step_size, progress)
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
    progress: Progress | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One Gauss-Newton step of :func:`craft_irn` (arrays (H, W, 3) / (h, w, 3) on 0..255).

    Only the ``free`` pixels move (S): x' = x + S (A - x + J^T mu) with
    (J S J^T + I/rho) mu = B - LR(x) - J S (A - x); pixels the step pushes past 0 or 255 are
    clipped and leave the free set. Returns (x', LR(x'), free'). Calls ``progress`` ``cg_steps``
    times (the steps an early stop skips are counted when it stops).
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
        ticked = 0
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
            if progress is not None and ticked < cg_steps - 1:  # the last one after the line search
                progress("Gauss-Newton")
                ticked += 1
        proposal = x_t + toward_cover + jt(mu)
    outside = hwc((proposal < 0) | (proposal > 1)) > 0
    proposal = proposal.clamp(0, 1)
    current = objective(x, hwc(lr0))
    result = x, hwc(lr0), free
    for t in (1.0, 0.5, 0.25):
        cand = x_t + t * (proposal - x_t)
        cand_np = hwc(cand)
        with torch.no_grad():
            cand_lr = hwc(model.encode(cand)[0])
        if objective(cand_np, cand_lr) < current:
            result = cand_np, cand_lr, free & ~outside if t == 1.0 else free
            break
    if progress is not None:
        for _ in range(cg_steps - ticked):
            progress("Gauss-Newton")
    return result


def _irn_adam(
    model: Any,
    x: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    weight: float,
    steps: int,
    step_size: float,
    progress: Progress | None = None,
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
        if progress is not None:
            progress("Adam")
    return param.detach()[0].double().cpu().numpy().transpose(1, 2, 0) * 255


def irn_tradeoff(
    cover: ImageLike,
    target: ImageLike,
    model: Any,
    weights: Sequence[float],
    progress: Progress | None = None,
    **kwargs: Any,
) -> list[dict[str, float]]:
    """The trade-off curve: for each weight, PSNR(x, COVER) and PSNR(model.downscale(x), TARGET).

    Both are measured on the PNG-decoded 8-bit x through ``model.downscale`` (quantised LR).
    ``progress`` gets each :func:`craft_irn`'s calls, the stage prefixed with the weight
    ("weight 10 (2/3), Adam").
    """
    curve = []
    for i, w in enumerate(weights, 1):
        hook = None
        if progress is not None:
            hook = _prefixed(progress, f"weight {w:g} ({i}/{len(weights)}), ")
        result = craft_irn(cover, target, model, weight=w, progress=hook, **kwargs)
        image = png_roundtrip(result.image)
        check = verify(image, cover, target, "irn:", result.size, model=model)
        curve.append(
            {"weight": w, "psnr_cover": check.psnr_cover, "psnr_target": check.psnr_target, "seconds": result.seconds}
        )
    return curve


def _prefixed(progress: Progress, prefix: str) -> Progress:
    return lambda stage: progress(prefix + stage)


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
    progress: Progress | None = None,
) -> ReverseResult:
    """Optimise an LR image: min mse(lr, COVER) + weight * mse(model.upscale(lr, z=0), TARGET).

    target (H, W, 3) with sides multiples of the scale; cover is fitted to (H/s, W/s).
    With z = 0 the upscale is nearly a box upsampling of lr (the inverse Haar with no detail),
    so the start is the weighted optimum for that: (C + w box(T)) / (1 + w); then ``steps``
    Adam steps (step size in grey levels) with gradients through the inverse network (Eq. 2
    run backwards), projecting to [0, 1]. Both PSNRs are measured on the 8-bit LR.
    ``progress`` (see :data:`Progress`) is called once per Adam step, with "Adam".
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
        if progress is not None:
            progress("Adam")
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
